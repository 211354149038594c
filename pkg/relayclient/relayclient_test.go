package relayclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/events"
	"github.com/relayd/relayd/pkg/wire"
)

var errStall = errors.New("stalled")

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// A relay that failed goes last for FailedFor, then takes its place again;
// the seeds come after the learned relays.
func TestListFailover(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Unix(1000, 0))
	seed := mustURL(t, "http://seed:1")
	l := NewList(ListConfig{Seeds: []*url.URL{seed}, FailedFor: 30 * time.Second, Clock: fc, Stable: true})
	l.Set(wire.Relays{Relays: []wire.Relay{{URL: "http://a:1"}, {URL: "http://b:1"}, {URL: "not a url"}}})
	first := l.Candidates(0)
	if len(first) != 3 || first[2].Host != "seed:1" {
		t.Fatalf("candidates %v: want two learned relays, then the seed", first)
	}
	l.Failed(first[0])
	if got := l.Candidates(0); got[0] != first[1] || got[2] != first[0] {
		t.Fatalf("after %s failed: %v, want it last", first[0].Host, got)
	}
	fc.Advance(31 * time.Second)
	if got := l.Candidates(0); got[0] != first[0] {
		t.Fatalf("after FailedFor: %v, want %s first again (an agent stays with its relay)", got, first[0].Host)
	}
}

// Run reads the list at once, again every Refresh on the clock, and at
// once when kicked.
func TestListRefresh(t *testing.T) {
	t.Parallel()
	var reads atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := reads.Add(1)
		fmt.Fprintf(w, `{"group":"g","relays":[{"url":"http://r%d:1"}]}`, n)
	}))
	t.Cleanup(srv.Close)
	fc := clock.NewFake(time.Unix(1000, 0))
	l := NewList(ListConfig{Seeds: []*url.URL{mustURL(t, srv.URL)}, Refresh: time.Minute, Clock: fc})
	read := func(ctx context.Context, base *url.URL) (wire.Relays, error) {
		resp, err := http.Get(base.String() + "/-/relays")
		if err != nil {
			return wire.Relays{}, err
		}
		defer resp.Body.Close()
		return wire.DecodeRelays(resp.Body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx, read, nil) }()
	defer func() { cancel(); <-done }()
	eventually(t, "the first read", func() bool { return reads.Load() == 1 && fc.Pending() == 1 })
	if l.Stale() {
		t.Fatal("stale right after a read")
	}
	fc.Advance(59 * time.Second)
	if fc.Pending() != 1 || reads.Load() != 1 {
		t.Fatalf("read again before Refresh (%d reads)", reads.Load())
	}
	fc.Advance(time.Second)
	eventually(t, "the read after Refresh", func() bool { return reads.Load() == 2 && fc.Pending() == 1 })
	l.Kick()
	eventually(t, "the read after Kick", func() bool { return reads.Load() == 3 })
	eventually(t, "the learned relay", func() bool {
		r := l.Learned()
		return len(r) == 1 && r[0].URL.Host == "r3:1"
	})
}

// guardServer answers with headers (unless noHeaders), then sends drip
// bytes and holds the body open until the test ends.
func guardServer(t *testing.T, noHeaders bool, drip int) *httptest.Server {
	t.Helper()
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !noHeaders {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(make([]byte, drip))
			w.(http.Flusher).Flush()
		}
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(stop); srv.Close() })
	return srv
}

func guardGet(t *testing.T, g Guard, u string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return g.Do(http.DefaultClient, req)
}

// No response headers within Stall: the request fails with the guard's
// error once the clock passes Stall.
func TestGuardHeaders(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Unix(1000, 0))
	srv := guardServer(t, true, 0)
	errc := make(chan error, 1)
	go func() {
		_, err := guardGet(t, Guard{Clock: fc, Stall: 10 * time.Second, Err: errStall}, srv.URL)
		errc <- err
	}()
	eventually(t, "the header timer", func() bool { return fc.Pending() == 1 })
	fc.Advance(10 * time.Second)
	if err := <-errc; !errors.Is(err, errStall) {
		t.Fatalf("err %v, want the stall error", err)
	}
}

// A body that stops, or drips below MinRate, fails when the window
// passes on the clock.
func TestGuardBody(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		minRate int64
		drip    int
	}{{"stall", 0, 0}, {"drip", 1000, 100}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fc := clock.NewFake(time.Unix(1000, 0))
			srv := guardServer(t, false, tc.drip)
			resp, err := guardGet(t, Guard{Clock: fc, Stall: time.Second, MinRate: tc.minRate, Err: errStall}, srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if tc.drip > 0 {
				if _, err := io.ReadFull(resp.Body, make([]byte, tc.drip)); err != nil {
					t.Fatal(err)
				}
			}
			errc := make(chan error, 1)
			go func() { _, err := io.ReadAll(resp.Body); errc <- err }()
			eventually(t, "the body timer", func() bool { return fc.Pending() == 1 })
			fc.Advance(time.Second)
			select {
			case err := <-errc:
				if !errors.Is(err, errStall) {
					t.Fatalf("err %v, want the stall error", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the body still reads after a window below the floor")
			}
		})
	}
}

// streamServer counts stream requests and answers each with answer.
func streamServer(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// runLoop runs a Loop over srv's stream on fc until the test ends; it
// counts the waits begun and the events read.
func runLoop(t *testing.T, fc *clock.Fake, srv *httptest.Server, idle time.Duration) (waits, evs *atomic.Int32) {
	t.Helper()
	base := mustURL(t, srv.URL)
	waits, evs = new(atomic.Int32), new(atomic.Int32)
	l := &Loop{Clock: fc, BackoffMin: time.Second, BackoffMax: 8 * time.Second,
		Wait: func(ctx context.Context, d time.Duration) bool {
			waits.Add(1)
			return clock.Sleep(ctx, fc, d)
		},
		Candidates: func() []*url.URL { return []*url.URL{base} },
		Stream: func(ctx context.Context, base *url.URL, _ bool) (bool, error) {
			ctx, cancel := context.WithCancelCause(ctx)
			defer cancel(nil)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base.String()+wire.EventsPath, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false, err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return false, WithRetryAfter(resp, fmt.Errorf("status %d", resp.StatusCode))
			}
			got := false
			err = ReadEvents(ctx, cancel, fc, resp.Body, idle, errStall, func(ev events.Event) error {
				if ev.Kind == wire.KindReplaced {
					return ErrReplaced
				}
				got = true
				evs.Add(1)
				return nil
			})
			return got, err
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return waits, evs
}

// step advances fc by d once the wait after stream want-1 is armed (or,
// waits nil, a timer is), and checks that stream want opens only then.
func step(t *testing.T, fc *clock.Fake, n, waits *atomic.Int32, want int32, early, d time.Duration) {
	t.Helper()
	eventually(t, fmt.Sprintf("stream %d's wait", want-1), func() bool {
		return n.Load() == want-1 && fc.Pending() == 1 && (waits == nil || waits.Load() == want-1)
	})
	fc.Advance(early)
	if fc.Pending() != 1 || n.Load() != want-1 {
		t.Fatalf("stream %d opened %s early", want, d-early)
	}
	fc.Advance(d - early)
	eventually(t, fmt.Sprintf("stream %d", want), func() bool { return n.Load() == want })
}

// Streams that fail are reopened after a backoff that doubles; one that
// said Retry-After is reopened then; one replaced after 2.5 s at least.
func TestLoopBackoff(t *testing.T) {
	t.Parallel()
	t.Run("failing", func(t *testing.T) {
		t.Parallel()
		fc := clock.NewFake(time.Unix(1000, 0))
		srv, n := streamServer(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusBadGateway) })
		w, _ := runLoop(t, fc, srv, time.Minute)
		step(t, fc, n, w, 2, 0, time.Second)                      // jittered 0.5-1 s
		step(t, fc, n, w, 3, 999*time.Millisecond, 2*time.Second) // 1-2 s
	})
	t.Run("retry-after", func(t *testing.T) {
		t.Parallel()
		fc := clock.NewFake(time.Unix(1000, 0))
		srv, n := streamServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "12")
			http.Error(w, "busy", http.StatusServiceUnavailable)
		})
		w, _ := runLoop(t, fc, srv, time.Minute)
		step(t, fc, n, w, 2, 11*time.Second+999*time.Millisecond, 12*time.Second)
	})
	t.Run("replaced", func(t *testing.T) {
		t.Parallel()
		fc := clock.NewFake(time.Unix(1000, 0))
		srv, n := streamServer(t, func(w http.ResponseWriter, r *http.Request) {
			_ = events.Encode(w, events.Event{Kind: wire.KindReplaced, Data: []byte(`{}`)})
		})
		w, _ := runLoop(t, fc, srv, time.Minute)
		step(t, fc, n, w, 2, 2499*time.Millisecond, 5*time.Second)
		step(t, fc, n, w, 3, 4999*time.Millisecond, 10*time.Second)
	})
}

// A stream silent for the idle time is dropped and reopened; one that
// delivered is reopened at once.
func TestLoopReconnectsSilentStream(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Unix(1000, 0))
	srv, n := streamServer(t, func(w http.ResponseWriter, r *http.Request) {
		_ = events.Encode(w, events.Event{Kind: wire.KindCatalog, Data: []byte(`{"generation":1}`)})
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	_, evs := runLoop(t, fc, srv, 45*time.Second)
	// The idle timer restarts with the event: advance only once it is in.
	eventually(t, "the first event", func() bool { return evs.Load() == 1 })
	step(t, fc, n, nil, 2, 44*time.Second, 45*time.Second)
}

// When no seed serves the list any more (replaced by a plain server), a
// relay learned before is asked; when nobody answers, the list stays and
// is not asked again before Refresh.
func TestListDiscoverFromLearned(t *testing.T) {
	t.Parallel()
	var relayReads atomic.Int32
	var relay *httptest.Server
	relay = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		relayReads.Add(1)
		fmt.Fprintf(w, `{"group":"g","relays":[{"url":%q},{"url":"http://other:1"}]}`, relay.URL)
	}))
	t.Cleanup(relay.Close)
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)
	fc := clock.NewFake(time.Unix(1000, 0))
	l := NewList(ListConfig{Seeds: []*url.URL{mustURL(t, plain.URL)}, Refresh: time.Minute, Clock: fc})
	l.Set(wire.Relays{Relays: []wire.Relay{{URL: relay.URL}}})
	read := func(ctx context.Context, base *url.URL) (wire.Relays, error) {
		resp, err := http.Get(base.String() + "/-/relays")
		if err != nil {
			return wire.Relays{}, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return wire.Relays{}, fmt.Errorf("status %d", resp.StatusCode)
		}
		return wire.DecodeRelays(resp.Body)
	}
	if _, ok := l.Discover(context.Background(), read, nil); !ok || relayReads.Load() != 1 {
		t.Fatalf("discover: ok %v, %d reads of the learned relay; want it asked", ok, relayReads.Load())
	}
	if got := l.Learned(); len(got) != 2 {
		t.Fatalf("learned %v, want the relay's two", got)
	}
	relay.Close()
	fc.Advance(2 * time.Minute)
	if !l.Stale() {
		t.Fatal("not stale after Refresh")
	}
	if _, ok := l.Discover(context.Background(), read, nil); ok {
		t.Fatal("discover succeeded with nobody serving the list")
	}
	if l.Stale() || len(l.Learned()) != 2 {
		t.Fatalf("after a failed discover: stale %v, learned %v; want the old list, not stale", l.Stale(), l.Learned())
	}
}
