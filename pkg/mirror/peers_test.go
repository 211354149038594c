package mirror_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/hierarchy"
	"github.com/relayd/relayd/pkg/server"
)

// ownedBy routes every key to one relay, as rendezvous hashing would for
// a group in which that relay owns them.
type ownedBy struct {
	base   string
	client *hierarchy.Client
}

func (p ownedBy) Owners(string) []string {
	if p.base == "" {
		return nil
	}
	return []string{p.base}
}

// Others: only the owner, when there is one.
func (p ownedBy) Others() []string {
	if p.base == "" {
		return nil
	}
	return []string{p.base}
}

func (p ownedBy) Fetch(ctx context.Context, base, key string, hdr http.Header) (*http.Response, error) {
	hdr.Set(server.PeerHeader, "test")
	return p.client.FetchFrom(ctx, base, key, hdr)
}

func TestGroupMirrorsFetchEachObjectOnce(t *testing.T) {
	t.Parallel()
	o := newTestOrigin(t, files)
	a := newMirror(t, o, t.TempDir(), nil)
	b := newMirror(t, o, t.TempDir(), nil)
	// a's content port, serving blobs to peers.
	srv := httptest.NewServer(server.NewContent(server.ContentConfig{Source: a.m, Blob: a.m.Blob, Relays: func() any { return nil }}, zerolog.Nop()))
	t.Cleanup(srv.Close)
	pc, err := hierarchy.New(hierarchy.DefaultConfig(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	b.m.SetPeers(ownedBy{base: srv.URL, client: pc})
	ctx := context.Background()
	// a has not synced yet: b's requests make a fetch each object (once),
	// then b gets it from a.
	if err := a.m.Sync(ctx); err != nil { // a learns the catalog
		t.Fatal(err)
	}
	before := o.objectGets()
	o.write("security/2026/new.patch", randBytes(5000, 31))
	o.write("software/linux-amd64/1.0/agent", randBytes(400000, 32))
	o.publish()
	if err := b.m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if d := o.objectGets() - before; d != 2 {
		t.Fatalf("the group fetched %d objects from the origin for 2 new objects, want 2", d)
	}
	if p := b.m.Progress(); p.ObjectsFromPeers < 2 {
		t.Fatalf("b got %d objects from its peer, want all new ones (and its first generation)", p.ObjectsFromPeers)
	}
	for p := range files {
		if _, err := b.read(t, p); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
}
