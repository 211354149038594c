package hierarchy

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/events"
	"github.com/relayd/relayd/pkg/wire"
)

// A stream the parent replaced (another relay with this group and node
// name) is reopened only after seconds, longer each time in a row, and
// the reason is logged once, not once per reconnect.
func TestWatchBacksOffWhenReplaced(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	opened := 0
	parent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/-/events" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		opened++
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		_ = events.Encode(w, events.Event{ID: 1, Kind: wire.KindCatalog, Data: []byte(`{"generation":1}`)})
		_ = events.Encode(w, events.Event{Kind: wire.KindReplaced, Data: []byte(`{"reason":"test"}`)})
	}))
	t.Cleanup(parent.Close)
	cfg := DefaultConfig()
	cfg.Upstreams, cfg.Node, cfg.Group = []string{parent.URL}, "web-1", "branch"
	var logs bytes.Buffer
	c, err := New(cfg, zerolog.New(&lockedWriter{w: &logs}).Level(zerolog.InfoLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var waits []time.Duration
	c.sleep = func(ctx context.Context, d time.Duration) bool {
		waits = append(waits, d) // Watch's goroutine only
		if len(waits) == 6 {
			cancel()
			return false
		}
		return ctx.Err() == nil
	}
	if err := c.Watch(ctx, func(events.Event) {}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if opened != 6 {
		t.Fatalf("%d streams opened for 6 waits", opened)
	}
	for i, d := range waits {
		base := replacedBackoff(i + 1)
		if d < base/2 || d > base {
			t.Errorf("wait %d after a replacement: %s, want %s to %s", i+1, d, base/2, base)
		}
	}
	if waits[0] < 2500*time.Millisecond || waits[5] < 60*time.Second {
		t.Errorf("waits %v: want seconds at first, a minute or more after six in a row", waits)
	}
	lw := logs.String()
	if n := strings.Count(lw, "replaced by another"); n != 1 {
		t.Errorf("%d log lines about the replacement, want 1:\n%s", n, lw)
	}
	if n := strings.Count(lw, `"level":"info"`); n > 2 {
		t.Errorf("%d info lines for 6 reconnects, want the first stream's open and close at most:\n%s", n, lw)
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
