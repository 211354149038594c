package mirror_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relayd/relayd/internal/tuftest"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/hierarchy"
	. "github.com/relayd/relayd/pkg/mirror"
	"github.com/relayd/relayd/pkg/origin"
	"github.com/relayd/relayd/pkg/server"
	"github.com/relayd/relayd/pkg/store"
	"github.com/relayd/relayd/pkg/tufclient"
	"github.com/relayd/relayd/pkg/tufrepo"
	"github.com/relayd/relayd/pkg/wire"
)

// testOrigin is a published tree served by the real origin handler on
// 127.0.0.1, counting the requests it gets.
type testOrigin struct {
	t    *testing.T
	tree string
	keys string           // a key per top-level role
	ring *tufrepo.KeyRing // all of them
	root []byte           // 1.root.json
	opt  tufrepo.Options  // publishing options (expiries)
	srv  *httptest.Server

	mu     sync.Mutex
	gets   map[string]int
	ranges map[string][]string
	holds  map[string]chan struct{} // path → requests wait until it is closed
}

func newTestOrigin(t *testing.T, files map[string][]byte) *testOrigin {
	t.Helper()
	o := &testOrigin{t: t, tree: t.TempDir(), keys: filepath.Join(t.TempDir(), "keys"), gets: map[string]int{}, ranges: map[string][]string{},
		holds: map[string]chan struct{}{}, opt: tufrepo.Options{Workers: 1}}
	o.ring, o.root = initRepo(t, o.tree, o.keys)
	for p, b := range files {
		o.write(p, b)
	}
	o.publish()
	org, err := origin.New(o.tree, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { org.Close() })
	h := server.NewContent(server.ContentConfig{Source: org, Metadata: org.Metadata, Relays: func() wire.Relays { return wire.Relays{} }}, zerolog.Nop())
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.gets[r.URL.Path]++
		if rg := r.Header.Get("Range"); rg != "" {
			o.ranges[r.URL.Path] = append(o.ranges[r.URL.Path], rg)
		}
		hold := o.holds[r.URL.Path]
		o.mu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *testOrigin) write(p string, b []byte) {
	full := filepath.Join(o.tree, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		o.t.Fatal(err)
	}
	if err := os.WriteFile(full, b, 0o644); err != nil {
		o.t.Fatal(err)
	}
}

func (o *testOrigin) publish() uint64 {
	r, err := tufrepo.Publish(context.Background(), o.tree, o.ring, o.opt)
	if err != nil {
		o.t.Fatal(err)
	}
	return uint64(r.Generation)
}

// initRepo makes a key for every top-level role in keys and the TUF
// repository of tree; it returns the ring of the keys and 1.root.json.
func initRepo(t *testing.T, tree, keys string) (*tufrepo.KeyRing, []byte) {
	t.Helper()
	roles, ring := tuftest.Keys(t, keys)
	if _, err := tufrepo.Init(tree, ring, roles, tufrepo.Options{Workers: 1}); err != nil {
		t.Fatal(err)
	}
	root, err := os.ReadFile(filepath.Join(tree, "-", "tuf", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	return ring, root
}

// hold makes requests for p wait until the returned function is called
// (or the test ends).
func (o *testOrigin) hold(p string) (release func()) {
	ch := make(chan struct{})
	o.mu.Lock()
	o.holds["/"+p] = ch
	o.mu.Unlock()
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	o.t.Cleanup(release)
	return release
}

func (o *testOrigin) count(p string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.gets["/"+p]
}

// metaGets is the metadata requests per path.
func (o *testOrigin) metaGets() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]int{}
	for p, c := range o.gets {
		if strings.HasPrefix(p, "/-/tuf/") {
			out[p] = c
		}
	}
	return out
}

func (o *testOrigin) objectGets() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for p, c := range o.gets {
		if !strings.HasPrefix(p, "/-/") {
			n += c
		}
	}
	return n
}

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

type fixture struct {
	m     *Mirror
	store *store.Store
	dir   string
}

func newMirror(t *testing.T, o *testOrigin, dir string, mod func(*Config)) *fixture {
	t.Helper()
	return newMirrorAt(t, o, o.srv.URL, dir, mod)
}

// newMirrorAt is newMirror with its upstream at base (a server in front
// of the origin, say).
func newMirrorAt(t *testing.T, o *testOrigin, base, dir string, mod func(*Config)) *fixture {
	t.Helper()
	return newMirrorClock(t, o, base, dir, clock.Real{}, mod)
}

// newMirrorClock is newMirrorAt on clk.
func newMirrorClock(t *testing.T, o *testOrigin, base, dir string, clk clock.Clock, mod func(*Config)) *fixture {
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
	cfg.Root, cfg.Dir = o.root, filepath.Join(dir, "tuf")
	if mod != nil {
		mod(&cfg)
	}
	m, err := New(cfg, st, up, up.Metadata("", nil), log, clk)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{m: m, store: st, dir: dir}
	t.Cleanup(func() {
		m.Close() // its downloads end before the store closes
		st.Close()
	})
	return f
}

func (f *fixture) read(t *testing.T, key string) ([]byte, error) {
	t.Helper()
	obj, err := f.m.Get(context.Background(), key)
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	var b bytes.Buffer
	_, err = obj.Body.CopyTo(context.Background(), &b, 0, -1)
	return b.Bytes(), err
}

var files = map[string][]byte{
	"security/2026/a.patch":          randBytes(10000, 1),
	"security/2026/b.patch":          randBytes(20000, 2),
	"software/linux-amd64/1.0/agent": randBytes(300000, 3),
	"software/win-amd64/1.0/agent":   randBytes(200000, 4),
	"software/win-amd64/1.0/copy":    randBytes(200000, 4), // same bytes: one blob
}

func TestSyncServesEverythingWithOriginStopped(t *testing.T) {
	t.Parallel()
	o := newTestOrigin(t, files)
	f := newMirror(t, o, t.TempDir(), nil)
	if err := f.m.Ready(); !errors.Is(err, ErrNoCatalog) {
		t.Fatalf("ready before sync: %v", err)
	}
	if err := f.m.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := o.count("software/win-amd64/1.0/agent") + o.count("software/win-amd64/1.0/copy"); n != 1 {
		t.Fatalf("identical objects downloaded %d times, want 1", n)
	}
	o.srv.Close()
	for p, want := range files {
		got, err := f.read(t, p)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes, err %v", p, len(got), err)
		}
	}
	if _, err := f.read(t, "not/listed"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unlisted: %v", err)
	}
	p := f.m.Progress()
	if p.State != StateInSync || p.Generation != 1 || p.ObjectsDone != p.ObjectsTotal || p.ObjectsTotal != 5 {
		t.Fatalf("progress %+v", p)
	}
	// Every blob crossed from the upstream once; nothing came from peers.
	if up, peer := f.m.Bytes(); up != blobBytes(f.m.Live()) || peer != 0 {
		t.Fatalf("bytes from upstream %d, from peers %d; want %d and 0", up, peer, blobBytes(f.m.Live()))
	}
}

// blobBytes is the size of c's distinct blobs.
func blobBytes(l *Live) int64 {
	c := l.Catalog
	var n int64
	seen := map[digest.Digest]bool{}
	for _, o := range c.Objects {
		if !seen[o.Digest] {
			seen[o.Digest] = true
			n += o.Size
		}
	}
	return n
}

func TestSecondGenerationDownloadsOnlyTheChange(t *testing.T) {
	t.Parallel()
	o := newTestOrigin(t, files)
	f := newMirror(t, o, t.TempDir(), nil)
	ctx := context.Background()
	if err := f.m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	before, meta := o.objectGets(), o.metaGets()
	// No change: one timestamp request, nothing else asked.
	if err := f.m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if o.objectGets() != before {
		t.Fatalf("a no-change sync requested %d objects", o.objectGets()-before)
	}
	if after := o.metaGets(); after["/-/tuf/timestamp.json"] != meta["/-/tuf/timestamp.json"]+1 || len(after) != len(meta) {
		t.Fatalf("a no-change sync asked for metadata %v (before %v), want timestamp.json once", after, meta)
	}
	changed := randBytes(12345, 9)
	o.write("security/2026/a.patch", changed)
	os.Remove(filepath.Join(o.tree, "software", "linux-amd64", "1.0", "agent"))
	if g := o.publish(); g != 2 {
		t.Fatalf("generation %d", g)
	}
	if err := f.m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if d := o.objectGets() - before; d != 1 || o.count("security/2026/a.patch") != 2 {
		t.Fatalf("second generation fetched %d objects, want exactly the changed one", d)
	}
	if got, _ := f.read(t, "security/2026/a.patch"); !bytes.Equal(got, changed) {
		t.Fatal("changed object not served")
	}
	if _, err := f.read(t, "software/linux-amd64/1.0/agent"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removed object: %v", err)
	}
	// Garbage collection: the removed object's and the old patch's blobs
	// are kept one generation, unpinned (dictionaries for deltas), and
	// gone from disk when the next generation goes live.
	if st := f.store.Stats(); st.Blobs != 5 {
		t.Fatalf("%d blobs after GC, want 5 (b.patch, new a.patch, win agent; old a.patch and agent kept)", st.Blobs)
	}
	o.write("security/2026/b.patch", randBytes(777, 11))
	if g := o.publish(); g != 3 {
		t.Fatalf("generation %d", g)
	}
	if err := f.m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if st := f.store.Stats(); st.Blobs != 4 {
		t.Fatalf("%d blobs after GC of generation 3, want 4 (new b.patch, a.patch, win agent; old b.patch kept)", st.Blobs)
	}
}

func TestTamperedObjectKeepsOldGeneration(t *testing.T) {
	t.Parallel()
	o := newTestOrigin(t, files)
	f := newMirror(t, o, t.TempDir(), nil)
	ctx := context.Background()
	if err := f.m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	o.write("security/2026/b.patch", randBytes(20000, 77))
	o.publish()
	// Tamper after publishing: the origin now serves bytes the catalog
	// does not list.
	o.write("security/2026/b.patch", randBytes(20000, 78))
	if err := f.m.Sync(ctx); !errors.Is(err, store.ErrDigestMismatch) {
		t.Fatalf("sync err = %v, want a digest mismatch", err)
	}
	if g := f.m.Live().Catalog.Generation; g != 1 {
		t.Fatalf("live generation %d, want 1 kept", g)
	}
	if got, _ := f.read(t, "security/2026/b.patch"); !bytes.Equal(got, files["security/2026/b.patch"]) {
		t.Fatal("old generation's object not served")
	}
	if p := f.m.Progress(); p.State != StateFailed || p.LastError == "" {
		t.Fatalf("progress %+v", p)
	}
	// The origin is repaired; the catalog is unchanged (304), and the
	// failed generation is retried, not forgotten.
	o.write("security/2026/b.patch", randBytes(20000, 77))
	if err := f.m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if g := f.m.Live().Catalog.Generation; g != 2 {
		t.Fatalf("live generation %d after repair, want 2", g)
	}
}

// TestRejectsForgedAndRolledBack: metadata of another repository is
// refused, counted, and the live generation stays; an older genuine
// timestamp (a parent behind) keeps the live generation without an
// alarm.
func TestRejectsForgedAndRolledBack(t *testing.T) {
	t.Parallel()
	o := newTestOrigin(t, files)
	f := newMirror(t, o, t.TempDir(), nil)
	ctx := context.Background()
	ts1 := readTimestamp(t, o)
	o.write("other", []byte("x"))
	o.publish() // generation 2
	if err := f.m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	genuine := readTimestamp(t, o)
	// A repository made with other keys, several generations ahead.
	other := t.TempDir()
	ring, _ := initRepo(t, other, filepath.Join(t.TempDir(), "keys"))
	for i := range 4 {
		if err := os.WriteFile(filepath.Join(other, "f"), []byte{byte(i)}, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := tufrepo.Publish(ctx, other, ring, tufrepo.Options{Workers: 1}); err != nil {
			t.Fatal(err)
		}
	}
	forged, err := os.ReadFile(filepath.Join(other, "-", "tuf", "timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	o.write("-/tuf/timestamp.json", forged)
	if err := f.m.Sync(ctx); err == nil {
		t.Fatal("a timestamp signed by another key was accepted")
	}
	if g := f.m.Live().Catalog.Generation; g != 2 {
		t.Fatalf("live generation %d, want 2", g)
	}
	if p := f.m.Progress(); p.RejectedCatalogs != 1 || p.State != StateFailed {
		t.Fatalf("after the forged timestamp: %+v, want failed and 1 rejected", p)
	}
	if n := f.m.Failures()[ReasonInvalid]; n != 1 {
		t.Fatalf("invalid failures %d, want 1", n)
	}
	// The genuine timestamp of generation 1: behind what is trusted.
	o.write("-/tuf/timestamp.json", ts1)
	if err := f.m.Sync(ctx); err != nil {
		t.Fatalf("a parent behind: %v, want the live generation kept quietly", err)
	}
	if g := f.m.Live().Catalog.Generation; g != 2 || !bytes.Equal(f.m.Live().Timestamp, genuine) {
		t.Fatalf("live generation %d after a rollback, want 2 with its timestamp", g)
	}
	if n := f.m.Failures()[ReasonRollback]; n < 1 {
		t.Fatalf("rollback failures %d, want at least 1", n)
	}
}

// TestResignedTimestampMovesNoObject: a new timestamp of the same
// generation replaces the one served (and is announced) without an
// object request.
func TestResignedTimestampMovesNoObject(t *testing.T) {
	t.Parallel()
	o := newTestOrigin(t, files)
	var announced []digest.Digest
	var mu sync.Mutex
	f := newMirror(t, o, t.TempDir(), func(c *Config) {
		c.OnLive = func(l *Live) { mu.Lock(); announced = append(announced, l.TimestampDigest); mu.Unlock() }
	})
	ctx := context.Background()
	if err := f.m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	before := o.objectGets()
	if err := tufrepo.ResignTimestamp(o.tree, o.ring, 0, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	resigned := readTimestamp(t, o)
	if err := f.m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	l := f.m.Live()
	if l.Catalog.Generation != 1 || !bytes.Equal(l.Timestamp, resigned) {
		t.Fatalf("live generation %d, timestamp re-signed: %v", l.Catalog.Generation, bytes.Equal(l.Timestamp, resigned))
	}
	if b, ok := f.m.File("timestamp.json"); !ok || !bytes.Equal(b, resigned) {
		t.Fatal("the re-signed timestamp is not the one served")
	}
	if o.objectGets() != before {
		t.Fatalf("the re-sign moved %d objects", o.objectGets()-before)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(announced) != 2 || announced[1] != digest.FromBytes(resigned) {
		t.Fatalf("announced %v, want the first generation and then the re-signed timestamp", announced)
	}
}

// TestExpiredMetadataKeepsServing: past the metadata's expiry (the
// mirror's clock), an update fails as expired, the live generation still
// serves every object, and says since when it expired.
func TestExpiredMetadataKeepsServing(t *testing.T) {
	t.Parallel()
	o := newTestOrigin(t, files)
	clk := clock.NewFake(time.Now())
	f := newMirrorClock(t, o, o.srv.URL, t.TempDir(), clk, nil)
	ctx := context.Background()
	if err := f.m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	l := f.m.Live()
	if l.Expired(clk.Now()) || l.Expires.IsZero() {
		t.Fatalf("fresh metadata: expires %v", l.Expires)
	}
	clk.Advance(2 * 24 * time.Hour) // the timestamp lives one day
	if err := f.m.Sync(ctx); !errors.Is(err, tufclient.ErrExpired) {
		t.Fatalf("sync past the expiry: %v, want ErrExpired", err)
	}
	if !f.m.Live().Expired(clk.Now()) || f.m.Ready() != nil {
		t.Fatal("the live generation is not kept, expired")
	}
	for p, want := range files {
		if got, err := f.read(t, p); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s after expiry: %d bytes, %v", p, len(got), err)
		}
	}
	if n := f.m.Failures()[ReasonExpired]; n != 1 {
		t.Fatalf("expired failures %d, want 1", n)
	}
}

func readTimestamp(t *testing.T, o *testOrigin) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(o.tree, "-", "tuf", "timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIncludeFilter(t *testing.T) {
	t.Parallel()
	o := newTestOrigin(t, files)
	f := newMirror(t, o, t.TempDir(), func(c *Config) { c.Include = []string{"security/**", "software/linux-amd64/**"} })
	if err := f.m.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := o.count("software/win-amd64/1.0/agent"); n != 0 {
		t.Fatal("filtered-out object downloaded")
	}
	if _, err := f.read(t, "software/win-amd64/1.0/agent"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("filtered-out object served: %v", err)
	}
	if got, _ := f.read(t, "software/linux-amd64/1.0/agent"); !bytes.Equal(got, files["software/linux-amd64/1.0/agent"]) {
		t.Fatal("included object wrong")
	}
	if !f.m.Covers("security/2026/a.patch") || f.m.Covers("software/win-amd64/1.0/agent") {
		t.Fatal("Covers wrong")
	}
}

func TestRestartKeepsGenerationAndResumesPartial(t *testing.T) {
	t.Parallel()
	big := randBytes(3<<20, 11)
	o := newTestOrigin(t, map[string][]byte{"software/x/1/big": big, "security/s": randBytes(100, 12)})
	dir := t.TempDir()
	f := newMirror(t, o, dir, nil)
	// A partial download left by a killed sync: the first MiB of big,
	// pinned to the representation it came from (the catalog digest is
	// the origin's ETag).
	d := digest.FromBytes(big)
	w, err := f.store.Resume(d.Hex(), int64(len(big)))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.SetPin(d.ETag(), int64(len(big))); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(big[:1<<20]); err != nil {
		t.Fatal(err)
	}
	w.Close()
	f.store.Close()
	f = newMirror(t, o, dir, nil) // "restart"
	if err := f.m.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	rg := o.ranges["/software/x/1/big"]
	o.mu.Unlock()
	if len(rg) != 1 || rg[0] != "bytes=1048576-" {
		t.Fatalf("ranges asked: %q, want one resume from 1 MiB", rg)
	}
	if got, _ := f.read(t, "software/x/1/big"); !bytes.Equal(got, big) {
		t.Fatal("resumed object wrong")
	}
	f.store.Close()
	// Restart again: the generation is live at once, nothing downloaded.
	before := o.objectGets()
	f = newMirror(t, o, dir, nil)
	if f.m.Ready() != nil || f.m.Live().Catalog.Generation != 1 {
		t.Fatal("live generation not restored")
	}
	if err := f.m.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if o.objectGets() != before {
		t.Fatal("objects downloaded again after restart")
	}
}

// catalogDigest is the sha256 of the published file at p (the digest
// the metadata lists for it, as long as the test has not changed it).
func catalogDigest(t *testing.T, o *testOrigin, p string) digest.Digest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(o.tree, filepath.FromSlash(p)))
	if err != nil {
		t.Fatal(err)
	}
	return digest.FromBytes(b)
}
