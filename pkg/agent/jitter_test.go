package agent

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// A sync asked for by an announcement starts after the delay drawn within
// SyncJitter, not before; announcements meanwhile join it (one sync); with
// no jitter it starts at once and nothing is drawn.
func TestWatchSpreadsSyncs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		jitter time.Duration
		delay  time.Duration // what the draw returns
	}{
		{"jitter", 2 * time.Second, 300 * time.Millisecond},
		{"none", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k := newRepo(t)
			files := map[string][]byte{"security/a": data(100, 1)}
			r := newRelay(t, k.publish(t, 1, files), files)
			cfg := testConfig(k, t.TempDir(), r)
			cfg.SyncJitter = tc.jitter
			a := newAgent(t, cfg)
			var drawn atomic.Int64
			a.jitter = func(d time.Duration) time.Duration {
				drawn.Add(1)
				if d != tc.jitter {
					t.Errorf("delay drawn within %s, want within SyncJitter %s", d, tc.jitter)
				}
				return tc.delay
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			wants, synced, results := make(chan uint64, 1), make(chan uint64, 1), make(chan Result, 4)
			done := make(chan struct{})
			go func() {
				defer close(done)
				a.syncLoop(ctx, wants, synced, func(res Result, err error) {
					if err != nil {
						t.Errorf("sync: %v", err)
					}
					results <- res
				})
			}()
			start := time.Now()
			offer(wants, 1)
			offer(wants, 1) // a second announcement joins the first's turn
			var res Result
			select {
			case res = <-results:
			case <-time.After(10 * time.Second):
				t.Fatal("no sync within 10s")
			}
			if took := time.Since(start); took < tc.delay {
				t.Errorf("the sync started %s after the announcement, before its turn at %s", took, tc.delay)
			}
			if res.Generation != 1 {
				t.Errorf("synced generation %d, want 1", res.Generation)
			}
			cancel()
			<-done
			if n := len(results); n != 0 {
				t.Errorf("%d more syncs for one generation", n)
			}
			if want := int64(min(tc.jitter, 1)); drawn.Load() != want {
				t.Errorf("%d delays drawn, want %d", drawn.Load(), want)
			}
		})
	}
}
