package mirror_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/hierarchy"
	"github.com/relayd/relayd/pkg/httprange"
	. "github.com/relayd/relayd/pkg/mirror"
	"github.com/relayd/relayd/pkg/store"
)

// mirrorAt is newMirror with its upstream at base.
func mirrorAt(t *testing.T, o *testOrigin, base, dir string) *fixture {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	st, err := store.Open(store.DefaultConfig(dir), log, clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	hc := hierarchy.DefaultConfig()
	hc.Upstreams = []string{base}
	up, err := hierarchy.New(hc, log)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.PublicKey = o.pub
	m, err := New(cfg, st, up, log, clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{m: m, store: st, dir: dir}
	t.Cleanup(func() {
		m.Close()
		st.Close()
	})
	return f
}

// partialAnswer answers 206 with data from off, whatever the request's
// If-Range.
func partialAnswer(w http.ResponseWriter, etag string, data []byte, off int64) {
	if etag != "" {
		w.Header().Set("Etag", etag)
	}
	size := int64(len(data))
	w.Header().Set("Content-Range", httprange.Range{Start: off, Length: size - off}.ContentRange(size))
	w.Header().Set("Content-Length", strconv.FormatInt(size-off, 10))
	w.WriteHeader(http.StatusPartialContent)
	_, _ = w.Write(data[off:])
}

// A partial file left by a killed sync is resumed after a restart only by
// a 206 of the representation it was pinned to; an upstream that answers
// the resume with another version's bytes (another ETag or length, no or
// a weak ETag) is refused and the object starts over from byte 0, so the
// sync completes with the right bytes and nothing is spliced.
func TestResumeAfterRestartOnlyTheSameRepresentation(t *testing.T) {
	t.Parallel()
	const p = "software/x/1/big"
	big := randBytes(1<<20, 21)
	other := randBytes(1<<20, 22)
	for name, answer := range map[string]func(w http.ResponseWriter, etag string, off int64){
		"another etag, ignores If-Range": func(w http.ResponseWriter, _ string, off int64) { partialAnswer(w, `"other"`, other, off) },
		"another length": func(w http.ResponseWriter, etag string, off int64) {
			partialAnswer(w, etag, append(bytes.Clone(other), 1, 2, 3), off)
		},
		"no etag":   func(w http.ResponseWriter, _ string, off int64) { partialAnswer(w, "", other, off) },
		"weak etag": func(w http.ResponseWriter, etag string, off int64) { partialAnswer(w, "W/"+etag, other, off) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o := newTestOrigin(t, map[string][]byte{p: big})
			etag := catalogDigest(t, o, p).ETag()
			var (
				mu     sync.Mutex
				ranged []string // Range|If-Range of the resumes asked
			)
			target, _ := url.Parse(o.srv.URL)
			proxy := httputil.NewSingleHostReverseProxy(target)
			front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rng := r.Header.Get("Range")
				if r.URL.Path != "/"+p || rng == "" {
					proxy.ServeHTTP(w, r)
					return
				}
				mu.Lock()
				ranged = append(ranged, rng+"|"+r.Header.Get("If-Range"))
				mu.Unlock()
				rs, err := httprange.Parse(rng, int64(len(big)))
				if err != nil || len(rs) != 1 {
					http.Error(w, "bad range", http.StatusBadRequest)
					return
				}
				answer(w, etag, rs[0].Start)
			}))
			t.Cleanup(front.Close)

			dir := t.TempDir()
			f := mirrorAt(t, o, front.URL, dir)
			// A partial download left by a killed sync: the first 300 KiB
			// of big, pinned to the origin's representation.
			w, err := f.store.Resume(catalogDigest(t, o, p).Hex(), int64(len(big)))
			if err != nil {
				t.Fatal(err)
			}
			if err := w.SetPin(etag, int64(len(big))); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(big[:300<<10]); err != nil {
				t.Fatal(err)
			}
			w.Close()
			f.m.Close()
			f.store.Close()

			f = mirrorAt(t, o, front.URL, dir) // "restart"
			if err := f.m.Sync(context.Background()); err != nil {
				t.Fatalf("sync after a refused resume: %v", err)
			}
			if got, _ := f.read(t, p); !bytes.Equal(got, big) {
				t.Fatal("mirrored object wrong")
			}
			mu.Lock()
			defer mu.Unlock()
			if want := "bytes=307200-|" + etag; len(ranged) != 1 || ranged[0] != want {
				t.Fatalf("resumes asked: %q, want one %q", ranged, want)
			}
			if pr := f.m.Progress(); pr.ResumesRefused != 1 {
				t.Fatalf("ResumesRefused %d, want 1", pr.ResumesRefused)
			}
		})
	}
}
