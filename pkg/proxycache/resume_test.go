package proxycache

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/internal/resumetest"
	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/hierarchy"
	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/store"
)

// otherAnswers are the ways an upstream holding v2, another version of
// v1 (pinned with ETag "v1"), answers a resume.
func otherAnswers(v2 []byte) map[string]resumetest.Answer {
	answers := resumetest.Mismatched(`"v1"`, v2)
	answers["200 of another version"] = func(w http.ResponseWriter, _ int64) { resumetest.Whole(w, `"v2"`, v2) }
	return answers
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
			b := resumetest.NewServer(t, size, answer)
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
			mustGet(t, c, "big", v1, object.Revalidated) // stale at once: no freshness
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
			up := resumetest.NewServer(t, size, answer)
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
	for name, answer := range map[string]resumetest.Answer{
		"206":                func(w http.ResponseWriter, off int64) { resumetest.Partial(w, `"v1"`, v1, off) },
		"200, Range ignored": func(w http.ResponseWriter, _ int64) { resumetest.Whole(w, `"v1"`, v1) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			up := resumetest.NewServer(t, size, answer)
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

// A miss of a plain upstream object carries the upstream's ETag as sent:
// a strong one lets a relay streaming it from this one, its owner, pin
// its resume to it; a weak one is passed on (httprange.Pin refuses it).
func TestMissCarriesTheUpstreamsStrongETag(t *testing.T) {
	t.Parallel()
	f := newFixture(t, DefaultConfig(), 0)
	f.up.set("/strong", &upObject{body: []byte("strong"), header: http.Header{"Etag": {`"v1"`}}})
	f.up.set("/weak", &upObject{body: []byte("weak"), header: http.Header{"Etag": {`W/"v1"`}}})
	for key, want := range map[string]string{"strong": `"v1"`, "weak": `W/"v1"`} {
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
