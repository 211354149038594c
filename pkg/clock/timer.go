// Timers on a Clock: AfterFunc and Sleep, so that stall guards, backoff
// and reconnect loops run on the injected clock and tests advance a Fake
// instead of sleeping.
package clock

import (
	"context"
	"sort"
	"time"
)

// Timer is a scheduled call that can be stopped or moved, as *time.Timer
// made by time.AfterFunc.
type Timer interface {
	// Stop prevents the call; it reports whether the timer was pending.
	Stop() bool
	// Reset schedules the call d from now; it reports whether the timer
	// was pending.
	Reset(d time.Duration) bool
}

// Timers is a Clock that also schedules calls.
type Timers interface {
	Clock
	// AfterFunc calls f, in its own goroutine, once d has passed.
	AfterFunc(d time.Duration, f func()) Timer
}

var (
	_ Timers = Real{}
	_ Timers = (*Fake)(nil)
)

// AfterFunc is time.AfterFunc.
func (Real) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Sleep waits for d on c unless ctx ends first; it reports whether it
// waited the whole d.
func Sleep(ctx context.Context, c Timers, d time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	if d <= 0 {
		return true
	}
	done := make(chan struct{})
	t := c.AfterFunc(d, func() { close(done) })
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-done:
		return true
	}
}

// fakeTimer is a call waiting for a Fake's time to reach at.
type fakeTimer struct {
	f   *Fake
	at  time.Time
	fn  func()
	set bool // pending
}

// AfterFunc schedules f for when Advance moves the time d ahead (or
// further). f runs in its own goroutine, as with time.AfterFunc.
func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	t := &fakeTimer{f: f, fn: fn}
	t.Reset(d)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	was := t.set
	t.set = false
	t.f.drop(t)
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.f.mu.Lock()
	was := t.set
	t.f.drop(t)
	t.at, t.set = t.f.now.Add(d), true
	t.f.timers = append(t.f.timers, t)
	due := t.f.due()
	t.f.mu.Unlock()
	runAll(due)
	return was
}

// drop removes t from the pending timers; f.mu is held.
func (f *Fake) drop(t *fakeTimer) {
	for i, x := range f.timers {
		if x == t {
			f.timers = append(f.timers[:i], f.timers[i+1:]...)
			return
		}
	}
}

// due takes the timers whose time has come, earliest first; f.mu is held.
func (f *Fake) due() []func() {
	sort.SliceStable(f.timers, func(i, j int) bool { return f.timers[i].at.Before(f.timers[j].at) })
	var out []func()
	for len(f.timers) > 0 && !f.timers[0].at.After(f.now) {
		t := f.timers[0]
		f.timers = f.timers[1:]
		t.set = false
		out = append(out, t.fn)
	}
	return out
}

func runAll(fns []func()) {
	for _, fn := range fns {
		go fn()
	}
}

// Pending is how many timers wait on f: a test advances the time once
// the code under test has armed the timer it means to fire.
func (f *Fake) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// BlockUntil waits until at least n timers wait on f, or ctx ends; it
// reports whether they do. A test calls it before Advance, so that the
// timer it means to fire is armed.
func (f *Fake) BlockUntil(ctx context.Context, n int) bool {
	for f.Pending() < n {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Millisecond):
		}
	}
	return true
}
