package agent

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/digest"
)

// A relay that stops sending mid-body is left when StallTimeout passes on
// the agent's clock, and the download goes on from the other relay: the
// test advances a fake clock instead of waiting for the timeout.
func TestStalledRelayFailsOverOnTheClock(t *testing.T) {
	t.Parallel()
	k := newRepo(t)
	big := data(1<<20, 5)
	files := map[string][]byte{"software/y/1/big.bin": big}
	cat := k.publish(t, 1, files)
	var cut atomic.Bool
	stalled := make(chan struct{})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	r1, r2 := newRelay(t, cat, files), newRelay(t, cat, files)
	for _, r := range []*relay{r1, r2} {
		r.hook = func(w http.ResponseWriter, req *http.Request) bool {
			if req.URL.Path != "/software/y/1/big.bin" || cut.Swap(true) {
				return false
			}
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			w.Header().Set("ETag", digest.FromBytes(big).ETag())
			w.Write(big[:100<<10])
			w.(http.Flusher).Flush()
			close(stalled)
			select { // hold the connection open, sending nothing
			case <-release:
			case <-req.Context().Done():
			}
			return true
		}
	}
	fc := clock.NewFake(time.Unix(1000, 0))
	dir := t.TempDir()
	cfg := testConfig(k, dir, r1, r2)
	cfg.Clock, cfg.StallTimeout, cfg.RetryBudget = fc, 10*time.Second, time.Minute
	a := newAgent(t, cfg)
	done := make(chan error, 1)
	go func() {
		_, err := a.Fetch(context.Background(), "software/y/1/big.bin")
		done <- err
	}()
	<-stalled
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if !fc.BlockUntil(wctx, 1) {
		t.Fatal("no stall guard armed")
	}
	select {
	case err := <-done:
		t.Fatalf("fetch ended before the stall timeout passed: %v", err)
	default:
	}
	// The guard counted above may be a metadata fetch's that has not been
	// stopped yet, and the object's guard armed just after: move the clock
	// on by the stall timeout until the fetch ends (polled, bounded).
	giveUp := time.After(30 * time.Second)
	var err error
wait:
	for {
		fc.Advance(10 * time.Second)
		select {
		case err = <-done:
			break wait
		case <-giveUp:
			t.Fatal("the fetch did not fail over after the stall timeout")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	wantFile(t, dir, "software/y/1/big.bin", big)
	if st := a.Stats(); st.Failovers < 1 {
		t.Fatalf("stats %+v, want a failover", st)
	}
	noParts(t, dir)
}
