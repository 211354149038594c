package mirror_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/hierarchy"
	. "github.com/relayd/relayd/pkg/mirror"
	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/server"
	"github.com/relayd/relayd/pkg/wire"
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
	hdr.Set(wire.PeerHeader, "test")
	return p.client.FetchFrom(ctx, base, key, hdr)
}

// ownerAndPeer returns two mirrors of one origin: a serves blobs on its
// content port and owns every object; b fetches each from a.
func ownerAndPeer(t *testing.T) (o *testOrigin, a, b *fixture) {
	t.Helper()
	o = newTestOrigin(t, files)
	a = newMirror(t, o, t.TempDir(), nil)
	b = newMirror(t, o, t.TempDir(), nil)
	srv := httptest.NewServer(server.NewContent(server.ContentConfig{Source: a.m, Blob: a.m.Blob, Relays: func() wire.Relays { return wire.Relays{} }}, zerolog.Nop()))
	t.Cleanup(srv.Close)
	pc, err := hierarchy.New(hierarchy.DefaultConfig(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	b.m.SetPeers(ownedBy{base: srv.URL, client: pc})
	return o, a, b
}

func TestGroupMirrorsFetchEachObjectOnce(t *testing.T) {
	t.Parallel()
	o, a, b := ownerAndPeer(t)
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
	// b's first sync is generation 2 whole: every distinct blob of it
	// came from a, none from the origin.
	blobs := map[digest.Digest]bool{}
	for _, obj := range b.m.Live().Catalog.Objects {
		blobs[obj.Digest] = true
	}
	if p := b.m.Progress(); p.ObjectsFromPeers != int64(len(blobs)) {
		t.Fatalf("b got %d objects from its peer, want all %d blobs of its first generation", p.ObjectsFromPeers, len(blobs))
	}
	// The metrics count them so: b took every byte from the group, a
	// took them from the upstream (both generations) and none from b.
	if up, peer := b.m.Bytes(); up != 0 || peer != blobBytes(b.m.Live()) {
		t.Fatalf("b: bytes from upstream %d, from peers %d; want 0 and %d", up, peer, blobBytes(b.m.Live()))
	}
	if up, peer := a.m.Bytes(); up < blobBytes(a.m.Live()) || peer != 0 {
		t.Fatalf("a: bytes from upstream %d, from peers %d; want at least %d and 0", up, peer, blobBytes(a.m.Live()))
	}
	for p := range files {
		if _, err := b.read(t, p); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
}

// readAll reads obj whole and closes it.
func readAll(obj *object.Object) ([]byte, error) {
	defer obj.Close()
	var b bytes.Buffer
	_, err := obj.Body.CopyTo(context.Background(), &b, 0, -1)
	return b.Bytes(), err
}

// eventually polls cond until it holds, failing after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Two peers ask for one blob; the first gives up. The download they share
// goes on, and the second gets the blob: one origin request in all.
func TestBlobOutlivesTheCallerThatStartedIt(t *testing.T) {
	t.Parallel()
	o := newTestOrigin(t, files)
	a := newMirror(t, o, t.TempDir(), nil)
	const p = "software/linux-amd64/1.0/agent"
	d := catalogDigest(t, o, p)
	release := o.hold(p)

	// The first caller gives up once the download is under way (a
	// cancel, not a deadline: a loaded machine may not reach the origin
	// within any fixed time).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := make(chan error, 1)
	go func() {
		obj, err := a.m.Blob(ctx, d, p, false)
		if err == nil {
			obj.Close()
		}
		first <- err
	}()
	eventually(t, "the download to reach the origin", func() bool { return o.count(p) == 1 })
	cancel()
	type result struct {
		b   []byte
		err error
	}
	second := make(chan result, 1)
	go func() {
		obj, err := a.m.Blob(context.Background(), d, p, false)
		if err != nil {
			second <- result{nil, err}
			return
		}
		b, err := readAll(obj)
		second <- result{b, err}
	}()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller: err = %v, want its cancellation", err)
	}
	release()
	r := <-second
	if r.err != nil || !bytes.Equal(r.b, files[p]) {
		t.Fatalf("second caller: %d bytes, err %v", len(r.b), r.err)
	}
	if n := o.count(p); n != 1 {
		t.Fatalf("origin asked %d times for the blob, want 1", n)
	}
}

// A peer asks b for a blob b is downloading; b's sync needs the same
// blob meanwhile. Both wait on the one download (one writer of its
// partial file): the origin is asked once, and the blob is whole.
func TestSyncAndPeerShareOneDownload(t *testing.T) {
	t.Parallel()
	o, _, b := ownerAndPeer(t)
	const p = "software/linux-amd64/1.0/agent"
	d := catalogDigest(t, o, p)
	release := o.hold(p)

	blob := make(chan []byte, 1)
	go func() {
		obj, err := b.m.Blob(context.Background(), d, p, false)
		if err != nil {
			t.Errorf("Blob: %v", err)
			blob <- nil
			return
		}
		got, err := readAll(obj)
		if err != nil {
			t.Errorf("Blob: read: %v", err)
		}
		blob <- got
	}()
	eventually(t, "the peer's download to reach the origin", func() bool { return o.count(p) == 1 })
	synced := make(chan error, 1)
	go func() { synced <- b.m.Sync(context.Background()) }()
	// Every other object comes from a; the sync's download of p waits on
	// the one in flight.
	eventually(t, "the other objects", func() bool {
		pr := b.m.Progress()
		return pr.State == StateSyncing && pr.ObjectsDone == pr.ObjectsTotal-1
	})
	release()
	if err := <-synced; err != nil {
		t.Fatal(err)
	}
	if got := <-blob; !bytes.Equal(got, files[p]) {
		t.Fatalf("peer got %d bytes, want the blob's %d", len(got), len(files[p]))
	}
	if got, err := b.read(t, p); err != nil || !bytes.Equal(got, files[p]) {
		t.Fatalf("b serves %d bytes of %s, err %v", len(got), p, err)
	}
	if n := o.count(p); n != 1 {
		t.Fatalf("origin asked %d times for %s, want 1", n, p)
	}
}

// TestFirstSyncWaitsForTheGroup: a mirror told to join a group does not
// sync before it sees the group (past Settle, up to MaxSettle): syncing
// alone it would fetch upstream what the others own.
func TestFirstSyncWaitsForTheGroup(t *testing.T) {
	t.Parallel()
	o := newTestOrigin(t, files)
	var formed atomic.Bool
	var asked atomic.Int64
	f := newMirror(t, o, t.TempDir(), func(c *Config) {
		c.Settle = 10 * time.Millisecond
		c.Formed = func() bool { asked.Add(1); return formed.Load() }
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	eventually(t, "the mirror to ask whether its group formed, again and again", func() bool { return asked.Load() >= 5 })
	if n := len(o.metaGets()); n != 0 {
		t.Fatalf("the mirror fetched %d metadata files before its group formed", n)
	}
	formed.Store(true)
	eventually(t, "the first sync once the group formed", func() bool { return f.m.Progress().Generation == 1 })
}
