// The WAN cap: one token bucket for everything a relay pulls from its
// parents, with agents' fills ahead of background mirror and prefetch
// traffic.
package hierarchy

import (
	"context"
	"io"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

type backgroundKey struct{}

// Background marks requests made with ctx as background traffic (mirror
// syncs, prefetch): under a rate cap they wait while fills for agents
// are pulling.
func Background(ctx context.Context) context.Context {
	return context.WithValue(ctx, backgroundKey{}, true)
}

func isBackground(ctx context.Context) bool {
	b, _ := ctx.Value(backgroundKey{}).(bool)
	return b
}

// foregroundHold is how long after a foreground read background traffic
// keeps waiting: longer than the gaps between one fill's reads.
const foregroundHold = 200 * time.Millisecond

// limiter is the shared token bucket.
type limiter struct {
	lim   *rate.Limiter
	chunk int // the most one read takes from the bucket

	mu         sync.Mutex
	foreground time.Time // last foreground read
}

func newLimiter(bytesPerSec int64) *limiter {
	// A tenth of a second's worth per read (at least 16 KiB, at most 1
	// MiB): fine-grained enough to share, coarse enough to be cheap. The
	// burst is the same, so an idle link cannot save up a large spike.
	chunk := int(min(max(bytesPerSec/10, 16<<10), 1<<20))
	return &limiter{lim: rate.NewLimiter(rate.Limit(bytesPerSec), chunk), chunk: chunk}
}

// wait takes n bytes from the bucket, after foreground traffic has gone
// quiet when ctx is background.
func (l *limiter) wait(ctx context.Context, n int) error {
	if !isBackground(ctx) {
		l.mu.Lock()
		l.foreground = time.Now()
		l.mu.Unlock()
		return l.lim.WaitN(ctx, n)
	}
	for {
		l.mu.Lock()
		quietAt := l.foreground.Add(foregroundHold)
		l.mu.Unlock()
		d := time.Until(quietAt)
		if d <= 0 {
			break
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return l.lim.WaitN(ctx, n)
}

// body wraps an upstream body so that reading it draws from the bucket.
func (l *limiter) body(ctx context.Context, r io.ReadCloser) io.ReadCloser {
	return &limitedBody{r: r, l: l, ctx: ctx}
}

type limitedBody struct {
	r   io.ReadCloser
	l   *limiter
	ctx context.Context
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if len(p) > b.l.chunk {
		p = p[:b.l.chunk]
	}
	n, err := b.r.Read(p)
	if n > 0 {
		// Taken after the read: the bytes are in, and TCP's window
		// holds the parent back while we wait.
		if werr := b.l.wait(b.ctx, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.r.Close() }
