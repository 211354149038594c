package proxycache

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/store"
)

// ownerPeer routes every miss to one other relay of the group, a test
// upstream standing in for it.
type ownerPeer struct{ up *upstream }

var _ Peers = ownerPeer{}

func (p ownerPeer) Owner(string) (string, bool) { return p.up.srv.URL, true }

func (p ownerPeer) Fetch(ctx context.Context, base, key string, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/"+key, nil)
	if err != nil {
		return nil, err
	}
	req.Header = hdr.Clone()
	return p.up.srv.Client().Do(req)
}

// The owner's transfer breaks after 1000 bytes and the upstream is down
// (503): the fill fails, the requester gets an error and the process
// goes on.
func TestPeerBreaksUpstreamDown(t *testing.T) {
	t.Parallel()
	f := newFixture(t, DefaultConfig(), 0)
	owner := newUpstream(t)
	f.cache.SetPeers(ownerPeer{owner})
	body := randomBytes(100000, 31)
	// A relay sends the strong ETag that pins the object for a resume.
	etag := http.Header{"Etag": {digest.FromBytes(body).ETag()}}
	owner.set("/p.bin", &upObject{body: body, header: etag, cutAt: 1000})
	f.up.set("/p.bin", &upObject{body: body, header: etag, down: true})

	got, cache, err := get(t, f.cache, "p.bin")
	if err == nil {
		t.Fatalf("got %d bytes (%s) and no error from a broken fill", len(got), cache)
	}
	if cache != object.Peer || len(got) >= len(body) {
		t.Fatalf("cache %s, %d bytes of %d", cache, len(got), len(body))
	}
	if f.up.count("/p.bin") == 0 {
		t.Fatal("the upstream was not asked to resume")
	}
	if _, err := f.store.Get("p.bin"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("broken fill stored: %v", err)
	}
	// The fill counts its failure when it ends, which may be just after
	// the requester has its error.
	eventually(t, 5*time.Second, func() bool { return f.cache.Stats().FillErrors == 1 })
	// The cache still works: the next request fills anew.
	owner.set("/p.bin", &upObject{body: body})
	mustGet(t, f.cache, "p.bin", body, object.Peer)
}

// The owner's transfer of a listed object breaks: the fill resumes from
// the upstream, asking for the catalog generation as the first request
// did, and completes.
func TestPeerBreaksResumesWithGeneration(t *testing.T) {
	t.Parallel()
	f := newFixture(t, DefaultConfig(), 0)
	owner := newUpstream(t)
	f.cache.SetPeers(ownerPeer{owner})
	body := randomBytes(100000, 32)
	exp := &mapExpecter{m: map[string]catalog.Object{}, gen: 7}
	exp.set("security/p", digest.FromBytes(body), len(body))
	f.cache.expect = exp
	etag := http.Header{"Etag": {digest.FromBytes(body).ETag()}}
	owner.set("/security/p", &upObject{body: body, header: etag, cutAt: 1000})
	f.up.set("/security/p", &upObject{body: body, header: etag})

	mustGet(t, f.cache, "security/p", body, object.Peer)
	for name, u := range map[string]*upstream{"owner": owner, "upstream": f.up} {
		u.mu.Lock()
		gens := u.gens["/security/p"]
		u.mu.Unlock()
		if len(gens) != 1 || gens[0] != "7" {
			t.Errorf("%s saw generations %q, want one request for 7", name, gens)
		}
	}
	got, _, err := get(t, f.cache, "security/p")
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("stored object: %d bytes, %v", len(got), err)
	}
}
