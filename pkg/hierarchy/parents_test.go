package hierarchy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/events"
	"github.com/relayd/relayd/pkg/treeauth"
	"github.com/relayd/relayd/pkg/wire"
)

// parentServer plays one relay of a parent group: it serves one object
// and, if asked to, /-/relays and /-/events.
type parentServer struct {
	*httptest.Server
	name string
	data []byte
	etag string
	// breakAt, when > 0, makes object GETs without Range stop after that
	// many bytes by closing the connection.
	breakAt int
	relays  func() wire.Relays // nil: 404 on /-/relays
	events  chan events.Event

	mu     sync.Mutex
	gets   int
	ranges []string // "Range|If-Range" of each ranged GET
}

func newParent(t *testing.T, name string, data []byte) *parentServer {
	t.Helper()
	p := &parentServer{name: name, data: data, etag: `"sha256:test"`}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

func (p *parentServer) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/-/relays":
		if p.relays == nil {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(p.relays())
		return
	case "/-/events":
		p.mu.Lock()
		ch := p.events
		p.mu.Unlock()
		if ch == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case ev, ok := <-ch:
				if !ok {
					return
				}
				_ = events.Encode(w, ev)
				w.(http.Flusher).Flush()
			}
		}
	}
	p.mu.Lock()
	p.gets++
	if rng := r.Header.Get("Range"); rng != "" {
		p.ranges = append(p.ranges, rng+"|"+r.Header.Get("If-Range"))
	}
	p.mu.Unlock()
	w.Header().Set("Etag", p.etag)
	if r.Header.Get("Range") != "" || p.breakAt == 0 {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(p.data))
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(p.data)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(p.data[:p.breakAt])
	w.(http.Flusher).Flush()
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

func (p *parentServer) setEvents(ch chan events.Event) {
	p.mu.Lock()
	p.events = ch
	p.mu.Unlock()
}

func (p *parentServer) counts() (int, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gets, append([]string(nil), p.ranges...)
}

func relayList(ps ...*parentServer) func() wire.Relays {
	return func() wire.Relays {
		var l wire.Relays
		l.Group = "hq"
		for _, p := range ps {
			l.Relays = append(l.Relays, wire.Relay{URL: p.URL})
		}
		return l
	}
}

func fetchAll(t *testing.T, c *Client, key string) ([]byte, error) {
	t.Helper()
	resp, err := c.Fetch(context.Background(), key, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	l.Close()
	return u
}

// A seed names the parent group's relays; requests go to them, in random
// order, and the seed is used again only when they are all gone.
func TestParentsLearnedFromSeed(t *testing.T) {
	t.Parallel()
	data := []byte("object bytes")
	p1, p2 := newParent(t, "p1", data), newParent(t, "p2", data)
	seed := newParent(t, "seed", data)
	seed.relays = relayList(p1, p2)
	cfg := DefaultConfig()
	cfg.Upstreams = []string{seed.URL}
	c := newClient(t, cfg)
	c.discover(context.Background())
	if got := c.Parents(); len(got) != 3 || !strings.Contains(strings.Join(got, " "), p1.URL) {
		t.Fatalf("Parents() = %v, want p1, p2 and the seed", got)
	}
	for range 40 {
		if b, err := fetchAll(t, c, "x"); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("fetch: %q, %v", b, err)
		}
	}
	g1, _ := p1.counts()
	g2, _ := p2.counts()
	gs, _ := seed.counts()
	if gs != 0 || g1 < 8 || g2 < 8 {
		t.Fatalf("GETs: p1 %d, p2 %d, seed %d; want both learned parents used, the seed not", g1, g2, gs)
	}
	// Both learned parents gone: the seed is the last resort.
	p1.Close()
	p2.Close()
	if b, err := fetchAll(t, c, "x"); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("fetch with the learned parents down: %q, %v", b, err)
	}
	if s := c.Stats(); s.Failovers < 2 {
		t.Errorf("failovers %d, want at least 2", s.Failovers)
	}
}

// A transfer that breaks mid-body goes on from another parent with a
// Range request pinned by If-Range; the caller reads one whole body.
func TestResumeOnNextParent(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	broken, good := newParent(t, "broken", data), newParent(t, "good", data)
	broken.breakAt = 300 << 10
	cfg := DefaultConfig()
	cfg.Upstreams = []string{broken.URL, good.URL}
	c := newClient(t, cfg)
	// Make sure the broken one is asked first: the good one is cooling.
	c.markFailed(mustBase(t, good.URL))
	b, err := fetchAll(t, c, "big")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, data) {
		t.Fatalf("got %d bytes, want the %d original ones", len(b), len(data))
	}
	gets, ranges := good.counts()
	if gets != 1 || len(ranges) != 1 {
		t.Fatalf("good parent: %d GETs, ranges %q; want one ranged GET", gets, ranges)
	}
	if want := fmt.Sprintf("bytes=%d-%d|%s", broken.breakAt, len(data)-1, broken.etag); ranges[0] != want {
		t.Fatalf("resume asked %q, want %q", ranges[0], want)
	}
	if s := c.Stats(); s.Resumes != 1 {
		t.Fatalf("resumes %d, want 1", s.Resumes)
	}
}

// A parent holding another version of the object cannot continue it: the
// body fails instead of mixing versions.
func TestResumeRefusesAnotherVersion(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("x"), 200<<10)
	broken, other := newParent(t, "broken", data), newParent(t, "other", bytes.Repeat([]byte("y"), 200<<10))
	broken.breakAt = 50 << 10
	other.etag = `"sha256:other"`
	cfg := DefaultConfig()
	cfg.Upstreams = []string{broken.URL, other.URL}
	c := newClient(t, cfg)
	c.markFailed(mustBase(t, other.URL))
	b, err := fetchAll(t, c, "big")
	if err == nil {
		t.Fatalf("read %d bytes without error from a parent with another version", len(b))
	}
	if bytes.Contains(b, []byte("y")) {
		t.Fatal("bytes of another version were mixed in")
	}
}

// When every parent is down, the fallback answers; without one, the
// client says the upstream is unavailable.
func TestFallback(t *testing.T) {
	t.Parallel()
	data := []byte("from the origin")
	origin := newParent(t, "origin", data)
	cfg := DefaultConfig()
	cfg.Upstreams = []string{deadURL(t), deadURL(t)}
	if _, err := fetchAll(t, newClient(t, cfg), "x"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("no fallback: err %v, want ErrUnavailable", err)
	}
	cfg.Fallback = []string{origin.URL}
	c := newClient(t, cfg)
	if b, err := fetchAll(t, c, "x"); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("with fallback: %q, %v", b, err)
	}
	if s := c.Stats(); s.Fallbacks != 1 {
		t.Fatalf("fallbacks %d, want 1", s.Fallbacks)
	}
	if _, err := New(Config{Fallback: []string{origin.URL}}, nopLog()); err == nil {
		t.Fatal("a fallback without an upstream was accepted")
	}
}

// Parents announcing an older generation are asked last for a newer one.
func TestCandidatesPreferTheGeneration(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Upstreams = []string{"http://seed:1"}
	c := newClient(t, cfg)
	var l wire.Relays
	for i, g := range []uint64{4, 5, 5, 0} {
		l.Relays = append(l.Relays, wire.Relay{URL: fmt.Sprintf("http://p%d:1", i), Generation: g})
	}
	c.SetParents(l)
	for range 20 {
		got := c.candidates(5)
		if len(got) != 5 || got[3].Host != "p0:1" || got[4].Host != "seed:1" {
			t.Fatalf("candidates(5) = %v, want p0 (behind) then the seed last", got)
		}
	}
}

// Watch follows one parent's stream, and moves to another when it ends.
func TestWatchFailsOver(t *testing.T) {
	t.Parallel()
	a, b := newParent(t, "a", nil), newParent(t, "b", nil)
	chA, chB := make(chan events.Event, 4), make(chan events.Event, 4)
	a.setEvents(chA)
	b.setEvents(chB)
	cfg := DefaultConfig()
	cfg.Upstreams = []string{a.URL, b.URL}
	c := newClient(t, cfg)
	got, stop := watchGenerations(c)
	defer stop()
	send := func(g uint64) {
		ev := events.Event{ID: g, Kind: wire.KindCatalog, Data: fmt.Appendf(nil, `{"generation":%d}`, g)}
		chA <- ev
		chB <- ev
	}
	send(1)
	waitGen(t, got, 1)
	// Whichever stream is open ends: the other parent takes over.
	c2 := newParent(t, "c", nil)
	chC := make(chan events.Event, 4)
	c2.setEvents(chC)
	c.SetParents(relayList(c2)()) // before the streams end: the next round finds c
	a.setEvents(nil)              // 404 from now on
	b.setEvents(nil)
	close(chA)
	close(chB)
	chC <- events.Event{ID: 2, Kind: wire.KindCatalog, Data: []byte(`{"generation":2}`)}
	waitGen(t, got, 2)
}

// watchGenerations runs c.Watch and passes on the generations announced;
// stop ends it and waits for it.
func watchGenerations(c *Client) (<-chan uint64, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan uint64, 8)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Watch(ctx, func(ev events.Event) {
			if g, err := wire.ParseGeneration(ev.Data); err == nil {
				select {
				case got <- g.Generation:
				default: // nobody is reading any more
				}
			}
		})
	}()
	return got, func() { cancel(); <-done }
}

func waitGen(t *testing.T, got <-chan uint64, want uint64) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case g := <-got:
			if g == want {
				return
			}
		case <-timeout:
			t.Fatalf("generation %d never arrived", want)
		}
	}
}

// Reports go to every parent.
func TestSendReport(t *testing.T) {
	t.Parallel()
	key, _ := treeauth.NewKey(bytes.Repeat([]byte{3}, treeauth.KeySize))
	v := &treeauth.Verifier{Key: key}
	var got atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := v.Verify(r, "/-/report")
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		rep, err := wire.DecodeReport(treeauth.CheckBody(r.Body, id.Body))
		if r.Method != http.MethodPost || r.URL.Path != "/-/report" || err != nil || rep.Node != "b1" || !id.Is(rep.Group, rep.Node) {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})
	s1, s2 := httptest.NewServer(h), httptest.NewServer(h)
	defer s1.Close()
	defer s2.Close()
	cfg := DefaultConfig()
	cfg.Upstreams = []string{s1.URL, s2.URL, deadURL(t)}
	cfg.Group, cfg.Node = "b", "b1"
	cfg.Auth = &treeauth.Signer{Key: key, Group: "b", Node: "b1"}
	c := newClient(t, cfg)
	if n := c.SendReport(context.Background(), wire.Report{Group: "b", Node: "b1"}, time.Second); n != 2 || got.Load() != 2 {
		t.Fatalf("SendReport took %d (servers saw %d), want 2", n, got.Load())
	}
	// Without a tree key a relay does not report at all.
	cfg.Auth = nil
	c = newClient(t, cfg)
	if n := c.SendReport(context.Background(), wire.Report{Group: "b", Node: "b1"}, time.Second); n != 0 || got.Load() != 2 {
		t.Fatalf("without a key: SendReport took %d (servers saw %d), want none", n, got.Load())
	}
}

// TestWatchClaims: with the tree key the stream is a signed relay claim;
// without one, or when the parent refuses the claim, the child follows
// the parent as an agent (no X-Relay-Path, no X-Relay-Node) and still
// gets the events.
func TestWatchClaims(t *testing.T) {
	t.Parallel()
	key, _ := treeauth.NewKey(bytes.Repeat([]byte{3}, treeauth.KeySize))
	for _, tc := range []struct {
		name      string
		childKey  *treeauth.Key
		parentKey *treeauth.Key
		relay     bool
	}{
		{"same key", key, key, true},
		{"no key", nil, key, false},
		{"parent without key", key, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := &treeauth.Verifier{Key: tc.parentKey}
			var mu sync.Mutex
			var seen []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/-/events" {
					http.NotFound(w, r)
					return
				}
				claim := r.Header.Get(wire.PathHeader) != "" || r.Header.Get(wire.NodeHeader) != ""
				if claim {
					if _, err := v.Verify(r, "/-/events"); err != nil {
						mu.Lock()
						seen = append(seen, "refused")
						mu.Unlock()
						http.Error(w, err.Error(), http.StatusUnauthorized)
						return
					}
				}
				mu.Lock()
				seen = append(seen, map[bool]string{true: "relay", false: "agent"}[claim])
				mu.Unlock()
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "event: catalog\ndata: {\"generation\":1}\n\n")
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			}))
			defer srv.Close()
			cfg := DefaultConfig()
			cfg.Upstreams = []string{srv.URL}
			cfg.Group, cfg.Node = "b", "b1"
			if tc.childKey != nil {
				cfg.Auth = &treeauth.Signer{Key: tc.childKey, Group: "b", Node: "b1"}
			}
			c := newClient(t, cfg)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			got := make(chan events.Event, 1)
			go c.Watch(ctx, func(ev events.Event) {
				select {
				case got <- ev:
				default:
				}
			})
			select {
			case <-got:
			case <-time.After(10 * time.Second):
				t.Fatal("no event")
			}
			mu.Lock()
			defer mu.Unlock()
			last := seen[len(seen)-1]
			if want := map[bool]string{true: "relay", false: "agent"}[tc.relay]; last != want {
				t.Fatalf("streams %v: want the one delivering to be a %s's", seen, want)
			}
		})
	}
}

func mustBase(t *testing.T, s string) *urlT {
	t.Helper()
	u, err := ParseBase(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

type urlT = url.URL

func nopLog() zerolog.Logger { return zerolog.Nop() }

// A parent that is down while the fallback is a plain server (404 on
// /-/events) is retried with the short backoff, not the long one kept for
// "nobody upstream pushes": push resumes within seconds of its return.
func TestWatchRetriesADownParentSoon(t *testing.T) {
	t.Parallel()
	var asked atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/-/events" {
			asked.Add(1)
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(plain.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // down for now
	cfg := DefaultConfig()
	cfg.Upstreams, cfg.Fallback = []string{"http://" + addr}, []string{plain.URL}
	c := newClient(t, cfg)
	got, stop := watchGenerations(c)
	defer stop()
	// A round has failed against the closed port and the plain fallback.
	deadline := time.Now().Add(10 * time.Second)
	for asked.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the fallback was never asked for an event stream")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if ln, err = net.Listen("tcp", addr); err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	p := &parentServer{name: "back", events: make(chan events.Event, 1)}
	p.events <- events.Event{ID: 1, Kind: wire.KindCatalog, Data: []byte(`{"generation":7}`)}
	srv := &http.Server{Handler: http.HandlerFunc(p.serve), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	waitGen(t, got, 7) // within 10 s; the long backoff is minutes
}
