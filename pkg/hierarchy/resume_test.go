package hierarchy

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/relayd/relayd/internal/resumetest"
	"github.com/relayd/relayd/pkg/httprange"
)

// A parent that answers a resume with bytes of another representation is
// refused: the caller reads the whole right body from the next upstream
// (here the fallback, asked after every parent), or an error — never A's
// first bytes followed by B's.
func TestResumeOnlyTheSameRepresentation(t *testing.T) {
	t.Parallel()
	const size, cut = 256 << 10, 100 << 10
	v1 := bytes.Repeat([]byte("a"), size)
	v2 := bytes.Repeat([]byte("b"), size)
	answers := resumetest.Mismatched(`"v1"`, v2)
	answers["honours If-Range: 200 of its version"] = func(w http.ResponseWriter, _ int64) { resumetest.Whole(w, `"v2"`, v2) }
	for name, answer := range answers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a := cutServer(t, `"v1"`, v1, cut)
			b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rng, err := httprange.Parse(r.Header.Get("Range"), size)
				if err != nil || len(rng) != 1 {
					http.Error(w, "want a range", http.StatusBadRequest)
					return
				}
				answer(w, rng[0].Start)
			}))
			t.Cleanup(b.Close)
			good := newParent(t, "c", v1)
			good.etag = `"v1"`

			for _, withGood := range []bool{true, false} {
				cfg := DefaultConfig()
				cfg.Upstreams = []string{a.URL, b.URL}
				if withGood {
					cfg.Fallback = []string{good.URL}
				}
				c := newClient(t, cfg)
				// A is asked first (B is cooling), and B before the fallback.
				c.markFailed(mustBase(t, b.URL))
				got, err := fetchAll(t, c, "big")
				if bytes.Contains(got, []byte("b")) {
					t.Fatalf("with a good fallback %v: read %d bytes spliced from another representation (err %v)", withGood, len(got), err)
				}
				if s := c.Stats(); s.ResumesRefused != 1 {
					t.Errorf("with a good fallback %v: ResumesRefused %d, want 1", withGood, s.ResumesRefused)
				}
				if !withGood {
					if err == nil || !errors.Is(err, httprange.ErrRefused) {
						t.Fatalf("no other upstream: read %d bytes, err %v; want a refusal", len(got), err)
					}
					continue
				}
				if err != nil || !bytes.Equal(got, v1) {
					t.Fatalf("read %d bytes, err %v; want the %d bytes of v1", len(got), err, len(v1))
				}
				if s := c.Stats(); s.Resumes != 1 {
					t.Errorf("resumes %d, want 1 (from the fallback)", s.Resumes)
				}
			}
		})
	}
}

// A first answer without a strong ETag, or of unknown length, is not
// resumed at all: Last-Modified alone does not pin the bytes.
func TestNoResumeWithoutAStrongETag(t *testing.T) {
	t.Parallel()
	v1 := bytes.Repeat([]byte("a"), 64<<10)
	for _, etag := range []string{"", `W/"v1"`} {
		a := cutServer(t, etag, v1, 10<<10)
		other := newParent(t, "other", v1)
		cfg := DefaultConfig()
		cfg.Upstreams = []string{a.URL, other.URL}
		c := newClient(t, cfg)
		c.markFailed(mustBase(t, other.URL))
		got, err := fetchAll(t, c, "x")
		if err == nil {
			t.Fatalf("etag %q: a broken body read as whole (%d bytes)", etag, len(got))
		}
		if gets, _ := other.counts(); gets != 0 {
			t.Fatalf("etag %q: %d resume requests for a body that does not pin its version", etag, gets)
		}
	}
}

// cutServer serves data with etag (none if empty) and Last-Modified, and
// closes the connection after cut bytes.
func cutServer(t *testing.T, etag string, data []byte, cut int) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if etag != "" {
			w.Header().Set("Etag", etag)
		}
		w.Header().Set("Last-Modified", "Mon, 07 Dec 2026 10:00:00 GMT")
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		_, _ = w.Write(data[:cut])
		w.(http.Flusher).Flush()
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(s.Close)
	return s
}
