package agent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/events"
	"github.com/relayd/relayd/pkg/wire"
)

// A stream the relay replaced (another agent with this id, at this
// address) is reopened only after seconds, longer each time in a row.
func TestWatchBacksOffWhenReplaced(t *testing.T) {
	t.Parallel()
	var opened atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/-/events" {
			http.NotFound(w, r)
			return
		}
		opened.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		_ = events.Encode(w, events.Event{Kind: wire.KindReplaced, Data: []byte(`{"reason":"test"}`)})
	}))
	t.Cleanup(srv.Close)
	cfg := testConfig(newRepo(t), t.TempDir(), &relay{srv: srv})
	cfg.ID = "agent-7"
	a := newAgent(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var waits []time.Duration
	a.sleep = func(ctx context.Context, d time.Duration) bool {
		waits = append(waits, d) // Watch's goroutine only
		if len(waits) == 4 {
			cancel()
			return false
		}
		return ctx.Err() == nil
	}
	if err := a.Watch(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := opened.Load(); got != 4 {
		t.Fatalf("%d streams opened for 4 waits", got)
	}
	for i, d := range waits {
		base := replacedBackoff(i + 1)
		if d < base/2 || d > base {
			t.Errorf("wait %d after a replacement: %s, want %s to %s", i+1, d, base/2, base)
		}
	}
}

// A relay that holds all the streams it may answers 503 with Retry-After;
// the agent comes back then, not within the second.
func TestWatchHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/-/events" {
			asked.Add(1)
			w.Header().Set("Retry-After", "12")
			http.Error(w, `{"error":"too many event streams","code":"too_many_streams"}`, http.StatusServiceUnavailable)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	a := newAgent(t, testConfig(newRepo(t), t.TempDir(), &relay{srv: srv}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var waits []time.Duration
	a.sleep = func(ctx context.Context, d time.Duration) bool {
		waits = append(waits, d)
		if len(waits) == 3 {
			cancel()
			return false
		}
		return true
	}
	if err := a.Watch(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if asked.Load() != 3 {
		t.Fatalf("%d stream requests for 3 waits", asked.Load())
	}
	for _, d := range waits {
		if d != 12*time.Second {
			t.Fatalf("waits %v, want 12s each", waits)
		}
	}
}
