// The stall guard: a request whose answer makes no progress is an error,
// not a hang.
package relayclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/relayd/relayd/pkg/clock"
)

// Guard says how patient a request is.
type Guard struct {
	// Clock schedules the checks. Default the wall clock.
	Clock clock.Timers
	// Stall is how long response headers may take, and the window in
	// which the body must make progress. 0: no guard.
	Stall time.Duration
	// MinRate is the floor, in bytes per second averaged over Stall,
	// below which a body counts as stalled (a slow drip); 0: any byte is
	// progress, and the window restarts with each read.
	MinRate int64
	// HeadersOnly guards the wait for the response headers only (an event
	// stream, silent between events, has its own idle guard).
	HeadersOnly bool
	// Err is the error a stall is reported as (wrapped with what
	// happened), e.g. agent.ErrStalled.
	Err error
}

// Do sends req (made with a context this function may cancel) through hc
// and returns the response with its body guarded: headers must come
// within Stall, then the body must bring at least MinRate×Stall bytes in
// every Stall (at least one byte). A stall cancels the request; the read
// that sees it fails with g.Err. The caller closes the body.
func (g Guard) Do(hc *http.Client, req *http.Request) (*http.Response, error) {
	if g.Stall <= 0 {
		return hc.Do(req)
	}
	if g.Clock == nil {
		g.Clock = clock.Real{}
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	req = req.WithContext(ctx)
	b := &guarded{g: g, ctx: ctx, cancel: cancel, min: max(1, g.MinRate*int64(g.Stall)/int64(time.Second))}
	b.timer = g.Clock.AfterFunc(g.Stall, func() {
		b.fire(fmt.Errorf("%w: no response headers within %s", g.Err, g.Stall))
	})
	resp, err := hc.Do(req)
	if err != nil {
		b.timer.Stop()
		if c := context.Cause(ctx); b.fired.Load() && c != nil {
			err = c
		}
		cancel(err)
		return nil, err
	}
	if !b.timer.Stop() || b.fired.Load() {
		// The headers came just as the timer fired: the request is
		// cancelled already.
		resp.Body.Close()
		cancel(context.Canceled)
		return nil, fmt.Errorf("%w: response headers took %s", g.Err, g.Stall)
	}
	b.body = resp.Body
	if !g.HeadersOnly {
		b.timer = g.Clock.AfterFunc(g.Stall, b.tick)
	}
	resp.Body = b
	return resp, nil
}

// guarded is a body that cancels its request when it brings fewer than
// min bytes in a window.
type guarded struct {
	g      Guard
	body   io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	min    int64
	timer  clock.Timer
	n      atomic.Int64
	last   atomic.Int64 // bytes read when the window began
	fired  atomic.Bool
}

func (b *guarded) fire(err error) {
	b.fired.Store(true)
	b.cancel(err)
}

func (b *guarded) tick() {
	n := b.n.Load()
	if got := n - b.last.Load(); got < b.min {
		if b.g.MinRate == 0 {
			b.fire(fmt.Errorf("%w: no data for %s", b.g.Err, b.g.Stall))
		} else {
			b.fire(fmt.Errorf("%w: %d bytes in %s (below %d)", b.g.Err, got, b.g.Stall, b.min))
		}
		return
	}
	b.last.Store(n)
	b.timer.Reset(b.g.Stall)
}

func (b *guarded) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if n > 0 {
		b.n.Add(int64(n))
		if b.g.MinRate == 0 && !b.g.HeadersOnly && !b.fired.Load() {
			// Any byte is progress: the window starts again.
			b.last.Store(b.n.Load())
			b.timer.Reset(b.g.Stall)
		}
	}
	if err != nil && err != io.EOF && b.fired.Load() {
		if c := context.Cause(b.ctx); c != nil {
			err = c
		}
	}
	return n, err
}

func (b *guarded) Close() error {
	b.timer.Stop()
	err := b.body.Close()
	b.cancel(context.Canceled)
	return err
}
