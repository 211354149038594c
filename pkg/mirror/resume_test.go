package mirror_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"

	"github.com/relayd/relayd/internal/resumetest"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/httprange"
)

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
	etag := digest.FromBytes(big).ETag() // the catalog's, which the origin sends
	for name, answer := range resumetest.Mismatched(etag, other) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o := newTestOrigin(t, map[string][]byte{p: big})
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
				answer(w, rs[0].Start)
			}))
			t.Cleanup(front.Close)

			dir := t.TempDir()
			f := newMirrorAt(t, o, front.URL, dir, nil)
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

			f = newMirrorAt(t, o, front.URL, dir, nil) // "restart"
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
