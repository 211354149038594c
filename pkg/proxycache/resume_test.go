package proxycache

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/hierarchy"
	"github.com/relayd/relayd/pkg/httprange"
	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/store"
)

// otherAnswers are the ways an upstream holding another version answers a
// resume (Range from the cut, If-Range with the first answer's ETag);
// each writes the answer for a request from off. v2 is the other version,
// of v1's length.
func otherAnswers(v2 []byte) map[string]func(w http.ResponseWriter, off int64) {
	longer := append(bytes.Clone(v2), v2[:4096]...)
	return map[string]func(w http.ResponseWriter, off int64){
		"another etag, ignores If-Range": func(w http.ResponseWriter, off int64) { partial(w, `"v2"`, v2, off) },
		"another length":                 func(w http.ResponseWriter, off int64) { partial(w, `"v1"`, longer, off) },
		"no etag":                        func(w http.ResponseWriter, off int64) { partial(w, "", v2, off) },
		"weak etag":                      func(w http.ResponseWriter, off int64) { partial(w, `W/"v1"`, v2, off) },
		"200 of another version": func(w http.ResponseWriter, off int64) {
			w.Header().Set("Etag", `"v2"`)
			w.Header().Set("Content-Length", strconv.Itoa(len(v2)))
			_, _ = w.Write(v2)
		},
	}
}

// partial answers 206 with data from off, whatever the request's If-Range.
func partial(w http.ResponseWriter, etag string, data []byte, off int64) {
	if etag != "" {
		w.Header().Set("Etag", etag)
	}
	size := int64(len(data))
	w.Header().Set("Content-Range", httprange.Range{Start: off, Length: size - off}.ContentRange(size))
	w.Header().Set("Content-Length", strconv.FormatInt(size-off, 10))
	w.WriteHeader(http.StatusPartialContent)
	_, _ = w.Write(data[off:])
}

// versionServer plays an upstream holding another version: a GET without
// Range is answered 503 (so the client asks the others first), a ranged
// one by answer.
func versionServer(t *testing.T, size int64, answer func(w http.ResponseWriter, off int64)) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rng, err := httprange.Parse(r.Header.Get("Range"), size)
		if r.Header.Get("Range") == "" || err != nil || len(rng) != 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		answer(w, rng[0].Start)
	}))
	t.Cleanup(s.Close)
	return s
}

// cacheOver builds a cache whose hierarchy client has these upstreams.
func cacheOver(t *testing.T, upstreams ...string) (*Cache, *store.Store) {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	st, err := store.Open(store.DefaultConfig(t.TempDir()), log, clock.NewFake(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	hc := hierarchy.DefaultConfig()
	hc.Upstreams = upstreams
	cl, err := hierarchy.New(hc, log)
	if err != nil {
		t.Fatal(err)
	}
	c := New(DefaultConfig(), st, cl, nil, log, clock.NewFake(time.Now()))
	t.Cleanup(func() {
		c.Close()
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return c, st
}

// A plain proxy with two parents: A cuts the object, B holds another
// version. The fill fails (no spliced bytes reach a requester, nothing is
// cached), and the next request is a MISS of the right bytes, never a HIT
// of spliced ones.
func TestFillNeverSplicesTwoParents(t *testing.T) {
	t.Parallel()
	const size, cut = 300 << 10, 100 << 10
	v1, v2 := bytes.Repeat([]byte("a"), size), bytes.Repeat([]byte("b"), size)
	for name, answer := range otherAnswers(v2) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a := newUpstream(t)
			a.set("/big", &upObject{body: v1, header: http.Header{"Etag": {`"v1"`}}, cutAt: cut})
			b := versionServer(t, size, answer)
			c, st := cacheOver(t, a.srv.URL, b.URL)

			got, _, err := get(t, c, "big")
			if bytes.Contains(got, []byte("b")) {
				t.Fatalf("a requester read %d bytes spliced from another version", len(got))
			}
			if err == nil {
				t.Fatalf("a fill resumed from another version succeeded (%d bytes)", len(got))
			}
			if _, err := st.Get("big"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("a broken fill was stored: %v", err)
			}
			a.set("/big", &upObject{body: v1, header: http.Header{"Etag": {`"v1"`}}})
			mustGet(t, c, "big", v1, object.Miss)
			mustGet(t, c, "big", v1, object.Hit)
		})
	}
}

// The owner relay's transfer breaks and the upstream holds another
// version: the fill fails instead of appending the upstream's bytes, and
// the refusal is counted.
func TestPeerResumeOnlyTheSameRepresentation(t *testing.T) {
	t.Parallel()
	const size, cut = 300 << 10, 100 << 10
	v1, v2 := bytes.Repeat([]byte("a"), size), bytes.Repeat([]byte("b"), size)
	for name, answer := range otherAnswers(v2) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			up := versionServer(t, size, answer)
			c, st := cacheOver(t, up.URL)
			owner := newUpstream(t)
			owner.set("/p.bin", &upObject{body: v1, header: http.Header{"Etag": {`"v1"`}}, cutAt: cut})
			c.SetPeers(ownerPeer{owner})

			got, cache, err := get(t, c, "p.bin")
			if bytes.Contains(got, []byte("b")) {
				t.Fatalf("a requester read %d bytes spliced from another version", len(got))
			}
			if err == nil || cache != object.Peer {
				t.Fatalf("got %d bytes (%s), err %v; want a failed peer fill", len(got), cache, err)
			}
			if _, err := st.Get("p.bin"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("a broken fill was stored: %v", err)
			}
			if s := c.Stats(); s.ResumesRefused != 1 {
				t.Fatalf("ResumesRefused %d, want 1", s.ResumesRefused)
			}
		})
	}
}

// The same representation continues a broken peer transfer: a 206 with
// the owner's ETag and length, or a 200 of it from an upstream that
// ignores Range (its first bytes skipped).
func TestPeerResumeSameRepresentation(t *testing.T) {
	t.Parallel()
	const size, cut = 300 << 10, 100 << 10
	v1 := randomBytes(size, 41)
	for name, answer := range map[string]func(w http.ResponseWriter, off int64){
		"206": func(w http.ResponseWriter, off int64) { partial(w, `"v1"`, v1, off) },
		"200, Range ignored": func(w http.ResponseWriter, off int64) {
			w.Header().Set("Etag", `"v1"`)
			w.Header().Set("Content-Length", strconv.Itoa(len(v1)))
			_, _ = w.Write(v1)
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			up := versionServer(t, size, answer)
			c, _ := cacheOver(t, up.URL)
			owner := newUpstream(t)
			owner.set("/p.bin", &upObject{body: v1, header: http.Header{"Etag": {`"v1"`}}, cutAt: cut})
			c.SetPeers(ownerPeer{owner})
			mustGet(t, c, "p.bin", v1, object.Peer)
			if s := c.Stats(); s.ResumesRefused != 0 {
				t.Fatalf("ResumesRefused %d, want 0", s.ResumesRefused)
			}
		})
	}
}

// A miss of a plain upstream object carries the upstream's strong ETag
// (not a weak one): a relay streaming it from this one, its owner, pins
// its resume to it.
func TestMissCarriesTheUpstreamsStrongETag(t *testing.T) {
	t.Parallel()
	f := newFixture(t, DefaultConfig(), 0)
	f.up.set("/strong", &upObject{body: []byte("strong"), header: http.Header{"Etag": {`"v1"`}}})
	f.up.set("/weak", &upObject{body: []byte("weak"), header: http.Header{"Etag": {`W/"v1"`}}})
	for key, want := range map[string]string{"strong": `"v1"`, "weak": ""} {
		obj, err := f.cache.Get(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		got, cache := obj.ETag, obj.Cache
		obj.Close()
		if cache != object.Miss || got != want {
			t.Errorf("%s: %s with ETag %q, want a miss with %q", key, cache, got, want)
		}
	}
}
