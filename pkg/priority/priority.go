// Package priority marks requests as background WAN traffic (mirror
// syncs, prefetch, pre-positioning) in their context, so that the upstream
// client (pkg/hierarchy) can put agents' fills first and keep background
// traffic to its transfer windows. A leaf: the behaviour packages that
// start work (proxycache, mirror) and the one that limits it (hierarchy)
// share it without importing each other.
package priority

import (
	"context"
	"sync"
	"sync/atomic"
)

type key struct{}

// mark is the value stored in a context: background until promoted.
type mark struct {
	promoted atomic.Bool
	once     sync.Once
	ch       chan struct{} // closed by promote
}

func newMark() *mark { return &mark{ch: make(chan struct{})} }

func (m *mark) promote() {
	m.once.Do(func() {
		m.promoted.Store(true)
		close(m.ch)
	})
}

// Background marks requests made with ctx as background traffic.
func Background(ctx context.Context) context.Context {
	return context.WithValue(ctx, key{}, newMark())
}

// Promoted returns a channel closed once ctx's background work is promoted
// to the foreground (nil, which never fires, when ctx cannot be).
func Promoted(ctx context.Context) <-chan struct{} {
	if m, _ := ctx.Value(key{}).(*mark); m != nil {
		return m.ch
	}
	return nil
}

// IsBackground reports whether ctx carries background traffic that has
// not been promoted.
func IsBackground(ctx context.Context) bool {
	m, _ := ctx.Value(key{}).(*mark)
	return m != nil && !m.promoted.Load()
}

// Promotable returns a context whose work is background as long as ctx's
// is, until promote is called: a transfer started for the background that
// an agent then waits for (a prefetch fill a request joins) goes on at
// foreground priority from its next read. For a foreground ctx, promote
// does nothing.
func Promotable(ctx context.Context) (context.Context, func()) {
	if !IsBackground(ctx) {
		return ctx, func() {}
	}
	m := newMark()
	return context.WithValue(ctx, key{}, m), m.promote
}
