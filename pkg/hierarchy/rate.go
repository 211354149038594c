// The WAN cap: one token bucket for everything a relay pulls from its
// parents, with agents' fills ahead of background mirror and prefetch
// traffic; background traffic also keeps to the transfer window in force
// (schedule.go), foreground fills to their own cap, and urgent paths
// ignore the window.
package hierarchy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/relayd/relayd/pkg/admindoc"
	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/glob"
	"github.com/relayd/relayd/pkg/priority"
)

// Background marks requests made with ctx as background traffic (mirror
// syncs, prefetch): under a rate cap they wait while fills for agents
// are pulling, and they keep to the transfer window (priority.Background).
func Background(ctx context.Context) context.Context {
	return priority.Background(ctx)
}

func isBackground(ctx context.Context) bool { return priority.IsBackground(ctx) }

// Class is the priority class of an upstream transfer.
type Class int

// The classes, as the metrics and /v1/status name them (Class.String).
const (
	// ClassForeground: a fill an agent (or a child relay) waits for. Never
	// held by the window; kept to --upstream-foreground-rate.
	ClassForeground Class = iota
	// ClassBackground: mirror syncs, prefetch, pre-positioning. Yields to
	// foreground reads and keeps to the window.
	ClassBackground
	// ClassUrgent: background traffic for paths matching --upstream-urgent,
	// and the tree's metadata (/-/ paths: catalog, TUF metadata), which
	// must stay fresh. Ignores the window, does not yield.
	ClassUrgent
	numClasses
)

func (c Class) String() string {
	return [...]string{"foreground", "background", "urgent"}[c]
}

// classOf is the class of a request for key made with ctx.
func (l *limiter) classOf(ctx context.Context, key string) Class {
	if !isBackground(ctx) {
		return ClassForeground
	}
	path, _, _ := strings.Cut(key, "?")
	if strings.HasPrefix(path, "-/") || (l.urgent != nil && !l.urgent.All() && l.urgent.Match(path)) {
		return ClassUrgent
	}
	return ClassBackground
}

// foregroundHold is how long after a foreground read background traffic
// keeps waiting: longer than the gaps between one fill's reads.
const foregroundHold = 200 * time.Millisecond

// windowPoll is the longest a held request sleeps before it looks at the
// window again (a clock set forward, a zone's rules).
const windowPoll = time.Minute

// limiter holds the buckets; each is nil when not configured.
type limiter struct {
	lim    *rate.Limiter // every class: --upstream-rate
	fg     *rate.Limiter // foreground: --upstream-foreground-rate
	bg     *rate.Limiter // background: the window's rate (rate.Inf when no rule matches)
	sched  *Schedule
	urgent *glob.Filter
	clock  clock.Timers
	chunk  int // the most one read takes from a bucket

	mu         sync.Mutex
	foreground time.Time // last foreground read
	window     int       // index of the rule bg is set to; -2 before the first

	waiting [numClasses]struct{ requests, bytes atomic.Int64 }
}

// burst is a bucket's burst for rate r: a tenth of a second's worth (at
// least 16 KiB, at most 1 MiB): fine-grained enough to share, coarse
// enough to be cheap, and an idle link cannot save up a large spike.
func burst(r int64) int { return int(min(max(r/10, 16<<10), 1<<20)) }

// limitConfig is what newLimiter builds from.
type limitConfig struct {
	rate, foreground int64
	sched            *Schedule
	urgent           *glob.Filter
	clock            clock.Timers
}

// limiterFor checks cfg's rates, schedule and urgent patterns and builds
// the limiter (nil when nothing limits upstream traffic).
func limiterFor(cfg Config) (*limiter, error) {
	if cfg.Rate < 0 {
		return nil, fmt.Errorf("hierarchy: upstream rate %d is negative", cfg.Rate)
	}
	if cfg.ForegroundRate < 0 {
		return nil, fmt.Errorf("hierarchy: upstream foreground rate %d is negative", cfg.ForegroundRate)
	}
	sched, err := ParseSchedule(cfg.Schedule, cfg.Location)
	if err != nil {
		return nil, err
	}
	var urgent *glob.Filter
	if len(cfg.Urgent) > 0 {
		if urgent, err = glob.New(cfg.Urgent); err != nil {
			return nil, fmt.Errorf("upstream-urgent: %w", err)
		}
	}
	return newLimiter(limitConfig{rate: cfg.Rate, foreground: cfg.ForegroundRate, sched: sched, urgent: urgent, clock: cfg.Clock}), nil
}

// newLimiter returns nil when nothing limits upstream traffic.
func newLimiter(c limitConfig) *limiter {
	if c.rate <= 0 && c.foreground <= 0 && c.sched == nil {
		return nil
	}
	l := &limiter{sched: c.sched, urgent: c.urgent, clock: c.clock, chunk: 1 << 20, window: -2}
	if l.clock == nil {
		l.clock = clock.Real{}
	}
	bucket := func(r int64) *rate.Limiter {
		l.chunk = min(l.chunk, burst(r))
		return rate.NewLimiter(rate.Limit(r), burst(r))
	}
	if c.rate > 0 {
		l.lim = bucket(c.rate)
	}
	if c.foreground > 0 {
		l.fg = bucket(c.foreground)
	}
	if c.sched != nil {
		for _, r := range c.sched.rules {
			if r.rate > 0 {
				l.chunk = min(l.chunk, burst(r.rate))
			}
		}
		l.bg = rate.NewLimiter(rate.Inf, 1<<20)
	}
	return l
}

// Window returns the window in force now (zero Window without a schedule).
func (l *limiter) Window() (Window, time.Time) {
	if l == nil || l.sched == nil {
		return Window{index: -1}, time.Time{}
	}
	now := l.clock.Now()
	return l.sched.At(now), l.sched.Next(now)
}

// setWindow points the background bucket at w's rate.
func (l *limiter) setWindow(w Window) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.window == w.index {
		return
	}
	l.window = w.index
	if !w.Limited() || w.Rate == 0 {
		l.bg.SetLimit(rate.Inf)
		return
	}
	l.bg.SetLimit(rate.Limit(w.Rate))
	l.bg.SetBurst(burst(w.Rate))
}

// admit returns the class of a request for key made with ctx, after
// waiting, for a background request, while the window in force holds
// background traffic (rate 0): until it ends, or the request is promoted
// to the foreground (priority.Promotable). A nil limiter admits all.
func (l *limiter) admit(ctx context.Context, key string) (Class, error) {
	if l == nil {
		return ClassForeground, nil
	}
	cls := l.classOf(ctx, key)
	if err := l.hold(ctx, cls); err != nil {
		return cls, err
	}
	return l.classOf(ctx, key), nil // promoted while held?
}

// hold waits while the window holds background traffic (see admit).
func (l *limiter) hold(ctx context.Context, cls Class) error {
	if cls != ClassBackground || l.sched == nil {
		return nil
	}
	counted := false
	defer func() {
		if counted {
			l.waiting[cls].requests.Add(-1)
		}
	}()
	promoted := priority.Promoted(ctx)
	for isBackground(ctx) {
		now := l.clock.Now()
		if !l.sched.At(now).Held() {
			return nil
		}
		if !counted {
			counted = true
			l.waiting[cls].requests.Add(1)
		}
		d := max(min(l.sched.Next(now).Sub(now), windowPoll), time.Millisecond)
		woke := make(chan struct{})
		t := l.clock.AfterFunc(d, func() { close(woke) })
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-promoted:
			t.Stop()
		case <-woke:
		}
	}
	return nil
}

// ErrWindowClosed ends a background body when the transfer window turns
// to rate 0 mid-transfer.
var ErrWindowClosed = errors.New("hierarchy: the transfer window closed for background traffic")

// wait takes n bytes from the buckets of cls: foreground from its own cap
// and the shared one; background, after foreground traffic has gone quiet
// and while its window allows, from the window's and the shared one;
// urgent from the shared one.
func (l *limiter) wait(ctx context.Context, cls Class, n int) error {
	switch cls {
	case ClassForeground:
		l.mu.Lock()
		l.foreground = time.Now()
		l.mu.Unlock()
		if l.fg != nil {
			if err := l.fg.WaitN(ctx, n); err != nil {
				return err
			}
		}
	case ClassBackground:
		if err := l.yield(ctx); err != nil {
			return err
		}
		if l.sched != nil {
			w := l.sched.At(l.clock.Now())
			if w.Held() {
				// The parent would not wait for us until the window
				// opens (its client stall timeout, our own): end the
				// body; a mirror keeps the partial file and resumes it
				// once admit lets its next request go.
				return fmt.Errorf("%w (%s)", ErrWindowClosed, w.Rule)
			}
			l.setWindow(w)
			if err := l.bg.WaitN(ctx, n); err != nil {
				return err
			}
		}
	}
	if l.lim != nil {
		return l.lim.WaitN(ctx, n)
	}
	return nil
}

// yield waits until no foreground read has happened for foregroundHold,
// when all classes share one bucket.
func (l *limiter) yield(ctx context.Context) error {
	if l.lim == nil {
		return nil
	}
	for {
		l.mu.Lock()
		quietAt := l.foreground.Add(foregroundHold)
		l.mu.Unlock()
		d := time.Until(quietAt)
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Waiting reports, per class, the transfers waiting for a bucket or the
// window and the bytes they have still to read (when their length is
// known).
func (l *limiter) Waiting() []admindoc.ClassWaiting {
	out := make([]admindoc.ClassWaiting, numClasses)
	for c := range numClasses {
		out[c] = admindoc.ClassWaiting{Class: c.String()}
		if l != nil {
			out[c].Requests = l.waiting[c].requests.Load()
			out[c].Bytes = l.waiting[c].bytes.Load()
		}
	}
	return out
}

// body wraps an upstream body so that reading it draws from the buckets
// of cls — foreground from the read after a promotion. length is the
// body's length (-1: unknown).
func (l *limiter) body(ctx context.Context, cls Class, r io.ReadCloser, length int64) io.ReadCloser {
	if l == nil {
		return r
	}
	return &limitedBody{r: r, l: l, ctx: ctx, cls: cls, left: length}
}

type limitedBody struct {
	r    io.ReadCloser
	l    *limiter
	ctx  context.Context
	cls  Class
	left int64 // bytes still to come; -1: unknown
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if len(p) > b.l.chunk {
		p = p[:b.l.chunk]
	}
	n, err := b.r.Read(p)
	if n > 0 {
		if b.left >= 0 {
			b.left = max(b.left-int64(n), 0)
		}
		if b.cls == ClassBackground && !isBackground(b.ctx) {
			b.cls = ClassForeground // promoted
		}
		// Taken after the read: the bytes are in, and TCP's window
		// holds the parent back while we wait.
		w := &b.l.waiting[b.cls]
		w.requests.Add(1)
		w.bytes.Add(max(b.left, 0))
		werr := b.l.wait(b.ctx, b.cls, n)
		w.requests.Add(-1)
		w.bytes.Add(-max(b.left, 0))
		if werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.r.Close() }
