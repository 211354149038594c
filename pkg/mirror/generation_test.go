package mirror_test

import (
	"context"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/hierarchy"
	"github.com/relayd/relayd/pkg/mirror"
	"github.com/relayd/relayd/pkg/origin"
	"github.com/relayd/relayd/pkg/server"
	"github.com/relayd/relayd/pkg/store"
	"github.com/relayd/relayd/pkg/wire"
)

// A parent announced generation 2; the parent asked first still serves
// generation 1. Want(2) makes every request of the sync carry the
// generation, the lagging parent refuses with 503, and the mirror moves to
// generation 2 from the parent that completed it.
func TestWantSkipsParentsBehind(t *testing.T) {
	t.Parallel()
	o := newTestOrigin(t, map[string][]byte{"security/a.patch": randBytes(5000, 1), "software/b.bin": randBytes(9000, 2)})
	// The lagging parent: a copy of the tree at generation 1.
	behindDir := t.TempDir()
	if err := os.CopyFS(behindDir, os.DirFS(o.tree)); err != nil {
		t.Fatal(err)
	}
	o.write("security/a.patch", randBytes(5000, 3))
	if g := o.publish(); g != 2 {
		t.Fatalf("published generation %d, want 2", g)
	}
	org, err := origin.New(behindDir, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { org.Close() })
	var mu sync.Mutex
	refused := 0
	behind := httptest.NewServer(server.NewContent(server.ContentConfig{Source: org, Metadata: org.Metadata, Relays: func() wire.Relays { return wire.Relays{} },
		Behind: func(g uint64) bool {
			mu.Lock()
			defer mu.Unlock()
			if g > 1 {
				refused++
				return true
			}
			return false
		}}, zerolog.Nop()))
	t.Cleanup(behind.Close)

	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel)
	st, err := store.Open(store.DefaultConfig(t.TempDir()), log, clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	hc := hierarchy.DefaultConfig()
	// The lagging parent is asked first: the other is the fallback, used
	// once the lagging one has been waited for.
	hc.Upstreams, hc.Fallback = []string{behind.URL}, []string{o.srv.URL}
	hc.BehindWait = 100 * time.Millisecond
	up, err := hierarchy.New(hc, log)
	if err != nil {
		t.Fatal(err)
	}
	cfg := mirror.DefaultConfig()
	cfg.Root, cfg.Dir = o.root, t.TempDir()
	var m *mirror.Mirror
	meta := up.Metadata("", func() uint64 { return m.Wanted() })
	m, err = mirror.New(cfg, st, up, meta, log, clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	m.Want(2)
	if err := m.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if live := m.Live(); live == nil || live.Catalog.Generation != 2 {
		t.Fatalf("live generation %v, want 2", live)
	}
	if !m.Behind(3) || m.Behind(2) {
		t.Fatal("Behind: want true for 3, false for 2")
	}
	mu.Lock()
	defer mu.Unlock()
	if refused == 0 {
		t.Fatal("the lagging parent was never asked for generation 2")
	}
}
