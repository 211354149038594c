package agent

import (
	"context"
	"testing"
)

// A stream ends (its context is done) just as the sync loop completes a
// generation: the stream's follower may take it from synced, as select
// picks at random among ready cases. It must hand it back, so that the
// next stream, opened reporting the older generation, reconnects with the
// new one; dropped, the relay lists the agent at the old generation until
// the next sync. Each round makes both cases ready at once.
func TestFollowSyncsHandsBackAGenerationAfterItsStreamEnded(t *testing.T) {
	t.Parallel()
	for i := range 200 {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		synced := make(chan uint64, 1)
		synced <- 2
		followSyncs(ctx, synced, 1, func() { t.Fatalf("round %d: resync asked of a stream that ended", i) })
		select {
		case g := <-synced:
			if g != 2 {
				t.Fatalf("round %d: synced holds %d, want 2", i, g)
			}
		default:
			t.Fatalf("round %d: the generation synced was lost with the stream that ended", i)
		}
	}
}

// On a live stream, a newer generation synced asks for the resync; one
// not newer than the stream reported is passed over.
func TestFollowSyncsResyncsOnANewerGeneration(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	synced := make(chan uint64, 1)
	resynced := make(chan struct{})
	go func() {
		followSyncs(ctx, synced, 3, func() { close(resynced) })
	}()
	synced <- 3 // what the stream reported already
	synced <- 4
	<-resynced
}
