package hostile

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/relayd/relayd/internal/proctest"
)

// TestHarness: a --root proxy in front of a faithful evilrelay serves a
// published object whole and verified; switched to tampered bytes,
// evilrelay's wrong copy has the right length and another digest (so the
// other tests attack with what they think they do).
func TestHarness(t *testing.T) {
	t.Parallel()
	data := randomBytes(1, 200_000)
	tr := publishTree(t, map[string][]byte{"security/kb-1.patch": data, "security/kb-2.patch": randomBytes(2, 5000)})
	evil := startEvil(t, tr.Dir)
	relay := startRelayd(t, "--mode", "proxy", "--upstream", evil.URL, "--data-dir", t.TempDir(), "--cache-max", "64MiB", "--root", tr.Root)

	proctest.Eventually(t, 20*time.Second, "the proxy to serve the object", func() error {
		a := do(http.MethodGet, relay.URL+"/security/kb-1.patch", 1<<20)
		if a.Err != nil || a.Status != http.StatusOK {
			return fmt.Errorf("status %d, %v", a.Status, a.Err)
		}
		if sum(a.Body) != sum(data) {
			return proctest.StopErr{Err: fmt.Errorf("got %d bytes sha256 %s, want %s", len(a.Body), sum(a.Body), sum(data))}
		}
		return nil
	})
	if n := proctest.CountRequests(evil.Log(), http.MethodGet, "/security/kb-1.patch"); n != 1 {
		t.Errorf("evilrelay saw %d GETs of the object, want 1 (then cached)", n)
	}

	setEvil(t, evil, "*=wrong")
	a := do(http.MethodGet, evil.URL+"/security/kb-2.patch", 1<<20)
	if a.Status != http.StatusOK || len(a.Body) != 5000 || bytes.Equal(a.Body, tr.Files["security/kb-2.patch"]) {
		t.Fatalf("evilrelay *=wrong: status %d, %d bytes, equal to the original: %v", a.Status, len(a.Body), bytes.Equal(a.Body, tr.Files["security/kb-2.patch"]))
	}
}

// TestEvilrelayBehaviours checks that each misbehaviour does what the
// tests built on it assume.
func TestEvilrelayBehaviours(t *testing.T) {
	t.Parallel()
	files := map[string][]byte{}
	for _, p := range []string{"a", "endless", "drip", "cut", "other", "long", "same"} {
		files["o/"+p] = randomBytes(uint64(len(p)), 100_000)
	}
	tr := publishTree(t, files)
	evil := startEvil(t, tr.Dir)
	etag, sameETag := do(http.MethodHead, evil.URL+"/o/other", 0).Header.Get("ETag"), do(http.MethodHead, evil.URL+"/o/same", 0).Header.Get("ETag")
	if etag == "" || sameETag == "" {
		t.Fatal("evilrelay sends no ETag when it behaves")
	}
	setEvil(t, evil, "/o/a=404", "/o/endless=endless", "/o/drip=drip:20", "/o/cut=cut:30000",
		"/o/other=other", "/o/long=other-length", "/o/same=other-same-etag", metaPath+"=endless")

	cases := []struct {
		name  string
		path  string
		hdr   []string
		check func(a answer) error
	}{
		{"404", "/o/a", nil, wantStatus(http.StatusNotFound)},
		{"endless", "/o/endless", nil, func(a answer) error {
			if a.Status != 200 || len(a.Body) < 4<<20 || a.Header.Get("Content-Length") != "" {
				return fmt.Errorf("status %d, %d bytes, Content-Length %q", a.Status, len(a.Body), a.Header.Get("Content-Length"))
			}
			return nil
		}},
		{"endless metadata", metaPath, nil, func(a answer) error {
			if !bytes.HasPrefix(a.Body, []byte(`{"signed":{"_type":"timestamp"`)) || len(a.Body) < 4<<20 {
				return fmt.Errorf("%d bytes starting %q", len(a.Body), a.Body[:min(len(a.Body), 40)])
			}
			return nil
		}},
		{"drip", "/o/drip", []string{"Range", "bytes=0-2"}, func(a answer) error {
			if a.Status != 200 || a.Header.Get("Content-Length") != "100000" {
				return fmt.Errorf("status %d, Content-Length %q", a.Status, a.Header.Get("Content-Length"))
			}
			return nil
		}},
		{"cut", "/o/cut", nil, func(a answer) error {
			if a.Err == nil || len(a.Body) != 30000 || !bytes.Equal(a.Body, files["o/cut"][:30000]) {
				return fmt.Errorf("%d bytes, err %v", len(a.Body), a.Err)
			}
			return nil
		}},
		{"cut, resumed past the cut", "/o/cut", []string{"Range", "bytes=40000-"}, func(a answer) error {
			if a.Err != nil || a.Status != 206 || !bytes.Equal(a.Body, files["o/cut"][40000:]) {
				return fmt.Errorf("status %d, %d bytes, err %v", a.Status, len(a.Body), a.Err)
			}
			return nil
		}},
		{"other ignores If-Range", "/o/other", []string{"Range", "bytes=1000-", "If-Range", etag}, func(a answer) error {
			if a.Status != 206 || a.Header.Get("ETag") == etag || len(a.Body) != 99000 || bytes.Equal(a.Body, files["o/other"][1000:]) {
				return fmt.Errorf("status %d, ETag %s (original %s), %d bytes", a.Status, a.Header.Get("ETag"), etag, len(a.Body))
			}
			return nil
		}},
		{"other-length", "/o/long", []string{"Range", "bytes=1000-"}, func(a answer) error {
			if a.Status != 206 || a.Header.Get("Content-Range") != "bytes 1000-104095/104096" {
				return fmt.Errorf("status %d, Content-Range %q", a.Status, a.Header.Get("Content-Range"))
			}
			return nil
		}},
		{"other-same-etag", "/o/same", nil, func(a answer) error {
			if a.Status != 200 || len(a.Body) != 100000 || bytes.Equal(a.Body, files["o/same"]) || a.Header.Get("ETag") != sameETag {
				return fmt.Errorf("status %d, %d bytes, ETag %s (original %s), the original bytes: %v", a.Status, len(a.Body), a.Header.Get("ETag"), sameETag, bytes.Equal(a.Body, files["o/same"]))
			}
			return nil
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			max := int64(8 << 20)
			if c.name == "drip" {
				max = 3 // three bytes of a slow body, then hang up
			}
			if err := c.check(do(http.MethodGet, evil.URL+c.path, max, c.hdr...)); err != nil {
				t.Error(err)
			}
		})
	}
}

func wantStatus(code int) func(answer) error {
	return func(a answer) error {
		if a.Status != code {
			return fmt.Errorf("status %d, want %d", a.Status, code)
		}
		return nil
	}
}
