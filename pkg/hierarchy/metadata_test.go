package hierarchy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/tufclient"
	"github.com/relayd/relayd/pkg/wire"
)

// TestMetadataFetcher: the TUF metadata is looked for on every parent and
// the fallback before it counts as missing (except a root version, whose
// first 404 ends the root chain), timestamp.json is asked past any HTTP
// cache and for the generation the relay wants, and a file is read
// within its limit.
func TestMetadataFetcher(t *testing.T) {
	t.Parallel()
	without := httptest.NewServer(http.NotFoundHandler())
	defer without.Close()
	var mu sync.Mutex
	var seen []http.Header
	with := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		switch r.URL.Path {
		case "/-/tuf/timestamp.json":
			_, _ = io.WriteString(w, `{"signed":{}}`)
		case "/-/tuf/2.snapshot.json":
			_, _ = io.WriteString(w, strings.Repeat("x", 100))
		default:
			http.NotFound(w, r)
		}
	}))
	defer with.Close()

	cfg := DefaultConfig()
	cfg.Upstreams, cfg.Fallback = []string{without.URL, with.URL}, []string{with.URL}
	c := newClient(t, cfg)
	m := c.Metadata(t.TempDir(), func() uint64 { return 7 })
	ctx := context.Background()
	for i := range 10 {
		b, err := m.FetchMeta(ctx, wire.TimestampName, 1<<10)
		if err != nil || string(b) != `{"signed":{}}` {
			t.Fatalf("try %d: %q, %v; want the parent that has it", i+1, b, err)
		}
	}
	mu.Lock()
	h := seen[len(seen)-1]
	mu.Unlock()
	if h.Get("Cache-Control") != "no-cache" || h.Get(wire.GenerationHeader) != "7" {
		t.Errorf("timestamp request headers %v: want Cache-Control: no-cache and %s: 7", h, wire.GenerationHeader)
	}
	if _, err := m.FetchMeta(ctx, "2.snapshot.json", 99); !errors.Is(err, catalog.ErrTooLarge) {
		t.Errorf("a file over its limit: err = %v, want ErrTooLarge", err)
	}
	if b, err := m.FetchMeta(ctx, "2.snapshot.json", 100); err != nil || len(b) != 100 {
		t.Errorf("a file of its limit: %d bytes, %v", len(b), err)
	}
	if _, err := m.FetchMeta(ctx, "3.targets.json", 1<<10); !errors.Is(err, tufclient.ErrNotFound) {
		t.Errorf("a file no parent has: err = %v, want tufclient.ErrNotFound", err)
	}
	if _, err := m.FetchMeta(ctx, "5.root.json", 1<<10); !errors.Is(err, tufclient.ErrNotFound) {
		t.Errorf("a root version past the newest: err = %v, want tufclient.ErrNotFound", err)
	}
	mu.Lock()
	before := len(seen)
	mu.Unlock()
	if _, err := m.FetchMeta(ctx, "../catalog", 1<<10); !errors.Is(err, tufclient.ErrNotFound) {
		t.Errorf("a name that is no metadata: err = %v, want tufclient.ErrNotFound", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != before {
		t.Error("a name that is no metadata was asked of a parent")
	}
}
