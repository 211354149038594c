package proxycache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/hierarchy"
	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/store"
	"github.com/relayd/relayd/pkg/wire"
)

// upstream is a real HTTP server on 127.0.0.1 whose objects, headers and
// pacing a test controls, and which counts what it was asked.
type upstream struct {
	srv *httptest.Server

	mu      sync.Mutex
	objects map[string]*upObject
	gets    map[string]int
	conds   map[string][]string // path → If-None-Match/If-Modified-Since seen
	gens    map[string][]string // path → wire.GenerationHeader of each GET
	now     func() time.Time    // the Date the server sends: the test's clock
}

type upObject struct {
	body   []byte
	header http.Header
	status int
	// gate, when set, is waited on before the byte at gateAt is sent.
	gate   chan struct{}
	gateAt int
	// cutAt > 0 closes the connection after that many bytes.
	cutAt int
	// down makes the server answer 503.
	down bool
}

func newUpstream(t testing.TB) *upstream {
	u := &upstream{now: time.Now, objects: map[string]*upObject{}, gets: map[string]int{}, conds: map[string][]string{},
		gens: map[string][]string{}}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) set(path string, o *upObject) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if o.header == nil {
		o.header = http.Header{}
	}
	u.objects[path] = o
}

func (u *upstream) count(path string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.gets[path]
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	o := u.objects[r.URL.Path]
	u.gets[r.URL.Path]++
	u.gens[r.URL.Path] = append(u.gens[r.URL.Path], r.Header.Get(wire.GenerationHeader))
	if c := r.Header.Get("If-None-Match") + "|" + r.Header.Get("If-Modified-Since"); c != "|" {
		u.conds[r.URL.Path] = append(u.conds[r.URL.Path], c)
	}
	u.mu.Unlock()
	if o == nil {
		http.NotFound(w, r)
		return
	}
	if o.down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Date", u.now().UTC().Format(http.TimeFormat))
	for k, v := range o.header {
		w.Header()[k] = v
	}
	if et := o.header.Get("Etag"); et != "" && r.Header.Get("If-None-Match") == et {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if lm := o.header.Get("Last-Modified"); lm != "" && r.Header.Get("If-None-Match") == "" && r.Header.Get("If-Modified-Since") == lm {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if o.status != 0 {
		w.WriteHeader(o.status)
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(o.body)))
	body := o.body
	if o.gate != nil {
		_, _ = w.Write(body[:o.gateAt])
		w.(http.Flusher).Flush()
		<-o.gate
		body = body[o.gateAt:]
	}
	if o.cutAt > 0 {
		_, _ = w.Write(body[:o.cutAt])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	_, _ = w.Write(body)
}

type fixture struct {
	cache *Cache
	store *store.Store
	up    *upstream
	clock *clock.Fake
}

func newFixture(t testing.TB, cfg Config, quota int64) *fixture {
	t.Helper()
	up := newUpstream(t)
	// Start at the real time: the upstream sends real Date headers.
	clk := clock.NewFake(time.Now())
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	scfg := store.DefaultConfig(t.TempDir())
	scfg.MaxBytes = quota
	st, err := store.Open(scfg, log, clk)
	if err != nil {
		t.Fatal(err)
	}
	up.now = clk.Now
	hc := hierarchy.DefaultConfig()
	hc.Upstreams = []string{up.srv.URL}
	cl, err := hierarchy.New(hc, log)
	if err != nil {
		t.Fatal(err)
	}
	c := New(cfg, st, cl, nil, log, clk)
	t.Cleanup(func() {
		c.Close()
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return &fixture{cache: c, store: st, up: up, clock: clk}
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// get fetches key whole and returns its bytes and cache result.
func get(t *testing.T, c *Cache, key string) ([]byte, string, error) {
	t.Helper()
	obj, err := c.Get(context.Background(), key)
	if err != nil {
		return nil, "", err
	}
	defer obj.Close()
	var buf bytes.Buffer
	if _, err := obj.Body.CopyTo(context.Background(), &buf, 0, -1); err != nil {
		return buf.Bytes(), obj.Cache, err
	}
	return buf.Bytes(), obj.Cache, nil
}

func mustGet(t *testing.T, c *Cache, key string, want []byte, wantCache string) {
	t.Helper()
	got, cache, err := get(t, c, key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("get %s: %d bytes, want %d (content differs)", key, len(got), len(want))
	}
	if cache != wantCache {
		t.Fatalf("get %s: X-Relay-Cache %s, want %s", key, cache, wantCache)
	}
	if cache == object.Miss {
		settled(t, c, key)
	}
}

// settled waits until no fill of key is in flight: the reader has its
// last byte before the fill is committed, and a request in between joins
// the finished fill (a MISS) instead of reading the store (a HIT).
func settled(t testing.TB, c *Cache, key string) {
	t.Helper()
	eventually(t, 10*time.Second, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, inFlight := c.fills[key]
		return !inFlight
	})
}

func TestCoalescingOneUpstreamGet(t *testing.T) {
	t.Parallel()
	f := newFixture(t, DefaultConfig(), 0)
	body := randomBytes(8<<20, 1)
	gate := make(chan struct{})
	f.up.set("/pkg.bin", &upObject{body: body, header: http.Header{"Cache-Control": {"max-age=3600"}}, gate: gate, gateAt: 1 << 20})

	const clients = 100
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	var started atomic.Int32
	for range clients {
		wg.Go(func() {
			obj, err := f.cache.Get(context.Background(), "pkg.bin")
			started.Add(1)
			if err != nil {
				errs <- err
				return
			}
			defer obj.Close()
			h := sha256.New()
			if _, err := obj.Body.CopyTo(context.Background(), h, 0, -1); err != nil {
				errs <- err
				return
			}
			if [32]byte(h.Sum(nil)) != sha256.Sum256(body) {
				errs <- errors.New("body differs")
			}
		})
	}
	// Every client has its object (headers known) while the fill is
	// still held at 1 MiB: nobody waited for the whole fill.
	eventually(t, 10*time.Second, func() bool { return started.Load() == clients })
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := f.up.count("/pkg.bin"); n != 1 {
		t.Fatalf("upstream GETs = %d, want 1", n)
	}
	mustGet(t, f.cache, "pkg.bin", body, object.Hit)
	if n := f.up.count("/pkg.bin"); n != 1 {
		t.Fatalf("upstream GETs after hit = %d, want 1", n)
	}
}

func TestStreamThroughBeforeFillEnds(t *testing.T) {
	t.Parallel()
	f := newFixture(t, DefaultConfig(), 0)
	body := randomBytes(4<<20, 2)
	gate := make(chan struct{})
	defer func() {
		select {
		case <-gate:
		default:
			close(gate)
		}
	}()
	f.up.set("/big.bin", &upObject{body: body, gate: gate, gateAt: 2 << 20})

	obj, err := f.cache.Get(context.Background(), "big.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	if obj.Cache != object.Miss || obj.Size != int64(len(body)) {
		t.Fatalf("cache %s size %d", obj.Cache, obj.Size)
	}
	// A range inside the bytes that arrived completes while the upstream
	// is still blocked.
	var part bytes.Buffer
	if _, err := obj.Body.CopyTo(context.Background(), &part, 1000, 4096); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(part.Bytes(), body[1000:5096]) {
		t.Fatal("range bytes differ")
	}
	// A second, late client joins and receives every byte that arrived
	// (2 MiB) but the last while the upstream is still blocked: the last
	// byte written is held back until the fill is complete.
	late, err := f.cache.Get(context.Background(), "big.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	var got bytes.Buffer
	if _, err := late.Body.CopyTo(context.Background(), &got, 0, 2<<20-1); err != nil {
		t.Fatal(err)
	}
	close(gate)
	if _, err := late.Body.CopyTo(context.Background(), &got, 2<<20-1, -1); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), body) {
		t.Fatal("late client's bytes differ")
	}
}

func TestDigestMismatchNeverCompletes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, DefaultConfig(), 0)
	body := randomBytes(1<<20, 3)
	wrong := digest.FromBytes([]byte("something else"))
	f.up.set("/evil.bin", &upObject{body: body, header: http.Header{"Etag": {wrong.ETag()}}})

	got, _, err := get(t, f.cache, "evil.bin")
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("err = %v, want ErrDigestMismatch", err)
	}
	if len(got) >= len(body) {
		t.Fatalf("client received %d of %d bytes: the last byte must be withheld", len(got), len(body))
	}
	if _, err := f.store.Get("evil.bin"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("wrong object stored: %v", err)
	}
	// The right digest in the ETag is accepted.
	f.up.set("/good.bin", &upObject{body: body, header: http.Header{"Etag": {digest.FromBytes(body).ETag()}}})
	mustGet(t, f.cache, "good.bin", body, object.Miss)
}

func TestTruncatedUpstreamNotCached(t *testing.T) {
	t.Parallel()
	f := newFixture(t, DefaultConfig(), 0)
	body := randomBytes(1<<20, 4)
	f.up.set("/cut.bin", &upObject{body: body, cutAt: 300 << 10, header: http.Header{"Cache-Control": {"max-age=60"}}})
	got, _, err := get(t, f.cache, "cut.bin")
	if err == nil {
		t.Fatal("truncated response completed without error")
	}
	if len(got) >= len(body) {
		t.Fatalf("client got %d bytes", len(got))
	}
	if _, err := f.store.Get("cut.bin"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("truncated object stored: %v", err)
	}
	f.up.set("/cut.bin", &upObject{body: body, header: http.Header{"Cache-Control": {"max-age=60"}}})
	mustGet(t, f.cache, "cut.bin", body, object.Miss)
	mustGet(t, f.cache, "cut.bin", body, object.Hit)
}

func TestNegativeCache(t *testing.T) {
	t.Parallel()
	f := newFixture(t, DefaultConfig(), 0)
	for range 3 {
		obj, err := f.cache.Get(context.Background(), "missing")
		if err != nil || obj.Status != http.StatusNotFound {
			t.Fatalf("err = %v, want the upstream's 404", err)
		}
		obj.Close()
		stored(t, f.store, "missing")
	}
	if n := f.up.count("/missing"); n != 1 {
		t.Fatalf("upstream asked %d times within the negative TTL, want 1", n)
	}
	f.clock.Advance(11 * time.Second)
	_, _, _ = get(t, f.cache, "missing")
	if n := f.up.count("/missing"); n != 2 {
		t.Fatalf("upstream asked %d times after the negative TTL, want 2", n)
	}
}

func TestQuotaTooSmallIsBusyNotOvershoot(t *testing.T) {
	t.Parallel()
	f := newFixture(t, DefaultConfig(), 1<<20)
	small := randomBytes(600<<10, 5)
	f.up.set("/a", &upObject{body: small, header: http.Header{"Cache-Control": {"max-age=60"}}})
	f.up.set("/b", &upObject{body: small[:500<<10], header: http.Header{"Cache-Control": {"max-age=60"}}})
	// Hold a reader on /a, so it cannot be evicted: /b finds no room.
	mustGet(t, f.cache, "a", small, object.Miss)
	obj, err := f.cache.Get(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := get(t, f.cache, "b"); !errors.Is(err, ErrBusy) {
		t.Fatalf("err = %v, want ErrBusy", err)
	}
	obj.Close()
	mustGet(t, f.cache, "b", small[:500<<10], object.Miss)
	if st := f.store.Stats(); st.Bytes > 1<<20 {
		t.Fatalf("store holds %d bytes over a 1 MiB quota", st.Bytes)
	}
}

func eventually(t testing.TB, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
