// The event-stream loop: one stream kept open to one relay, reopened
// with backoff and jitter when it ends.
package relayclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/events"
)

var (
	// ErrReplaced: the relay ended the stream because a newer one with
	// this identity (agent id, or relay group and node) came from the same
	// address.
	ErrReplaced = errors.New("event stream replaced by a newer one with this identity")
	// ErrNoEvents: the relay serves no event stream (a plain server).
	ErrNoEvents = errors.New("upstream serves no event stream")
	// ErrReconnect ends a stream the caller wants reopened at once (an
	// agent that reports a new generation): not a failure.
	ErrReconnect = errors.New("reconnect")
)

// RetryAfter is a refusal that said when to come back.
type RetryAfter struct {
	Err error
	D   time.Duration
}

func (r *RetryAfter) Error() string { return fmt.Sprintf("%v (retry after %s)", r.Err, r.D) }
func (r *RetryAfter) Unwrap() error { return r.Err }

// WithRetryAfter wraps err, the refusal resp is, in a *RetryAfter when
// resp is a 503 whose Retry-After asks for more than a second (a relay
// that holds all the streams it may); at most 5 minutes are taken.
func WithRetryAfter(resp *http.Response, err error) error {
	secs, perr := strconv.Atoi(resp.Header.Get("Retry-After"))
	if perr != nil || secs <= 1 || resp.StatusCode != http.StatusServiceUnavailable {
		return err
	}
	return &RetryAfter{Err: err, D: min(time.Duration(secs)*time.Second, 5*time.Minute)}
}

// ReplacedBackoff is the wait (before jitter: half to all of it) after
// the nth replacement in a row: 5 s, doubling, at most 2 min. Two
// processes sharing one identity then take turns at most every few
// seconds, less often as it goes on, instead of pushing each other off
// many times a second.
func ReplacedBackoff(n int) time.Duration {
	return min(5*time.Second<<min(n-1, 5), 2*time.Minute)
}

// Jitter returns a random duration from d/2 to d, so that many children
// do not come back in lockstep.
func Jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// Loop keeps an event stream open to one relay of a list.
type Loop struct {
	// Clock schedules the waits. Default the wall clock.
	Clock clock.Timers
	// BackoffMin and BackoffMax bound the wait after a round in which no
	// relay held a stream: BackoffMin doubled per round, jittered.
	// Defaults 500ms and 30s.
	BackoffMin, BackoffMax time.Duration
	// NoStreams is the wait when every relay of a round serves no stream
	// (ErrNoEvents); 0: the backoff.
	NoStreams time.Duration
	// Candidates is the order of one round.
	Candidates func() []*url.URL
	// Stream reads one relay's stream until it ends; got reports whether
	// any event arrived. quiet is set while replacements go on.
	Stream func(ctx context.Context, base *url.URL, quiet bool) (got bool, err error)
	// Failed, if set, is told of a relay whose stream failed or ended
	// (not ErrNoEvents, ErrReplaced nor ErrReconnect).
	Failed func(base *url.URL, got bool, err error)
	// BeforeRound and RoundFailed, if set, run before each round and after
	// a round in which no relay held a stream.
	BeforeRound, RoundFailed func(ctx context.Context)
	// Replaced, if set, is told of the nth replacement in a row and the
	// wait that follows.
	Replaced func(err error, n int, wait time.Duration)
	// Wait pauses; nil: clock.Sleep on Clock.
	Wait func(ctx context.Context, d time.Duration) bool
}

// Run keeps a stream open until ctx ends, and returns nil then.
func (l *Loop) Run(ctx context.Context) error {
	if l.Clock == nil {
		l.Clock = clock.Real{}
	}
	if l.BackoffMin <= 0 {
		l.BackoffMin = 500 * time.Millisecond
	}
	l.BackoffMax = max(l.BackoffMax, l.BackoffMin)
	round, replaced := 0, 0
	for ctx.Err() == nil {
		if l.BeforeRound != nil {
			l.BeforeRound(ctx)
		}
		d, again := l.round(ctx, &replaced)
		if ctx.Err() != nil {
			return nil
		}
		if again {
			round = 0
		} else {
			round++
			if l.RoundFailed != nil {
				l.RoundFailed(ctx)
			}
			if d == 0 {
				d = Jitter(l.backoff(round))
			}
		}
		if d > 0 && !l.wait(ctx, d) {
			return nil
		}
	}
	return nil
}

// round tries the candidates in turn. again reports that a stream worked
// (or was replaced) and the next round starts after d; otherwise d is the
// wait a relay asked for (Retry-After), the NoStreams wait, or 0 for the
// backoff.
func (l *Loop) round(ctx context.Context, replaced *int) (d time.Duration, again bool) {
	var comeBack time.Duration
	allPlain := true
	for _, base := range l.Candidates() {
		got, err := l.Stream(ctx, base, *replaced > 0)
		switch {
		case ctx.Err() != nil:
			return 0, true
		case errors.Is(err, ErrReplaced):
			*replaced++
			d := Jitter(ReplacedBackoff(*replaced))
			if l.Replaced != nil {
				l.Replaced(err, *replaced, d)
			}
			return d, true
		case errors.Is(err, ErrReconnect):
			return 0, true
		}
		*replaced = 0
		if ra := (*RetryAfter)(nil); errors.As(err, &ra) {
			comeBack = max(comeBack, ra.D)
		}
		if !errors.Is(err, ErrNoEvents) {
			allPlain = false
			if l.Failed != nil {
				l.Failed(base, got, err)
			}
		}
		if got {
			return 0, true
		}
	}
	switch {
	case comeBack > 0:
		// The relay spreads its Retry-After already: no jitter.
		return comeBack, false
	case allPlain && l.NoStreams > 0:
		return Jitter(l.NoStreams), false
	}
	return 0, false
}

// backoff is the wait before round (1, 2, …): BackoffMin doubled per
// round up to BackoffMax.
func (l *Loop) backoff(round int) time.Duration {
	d := l.BackoffMin
	for i := 1; i < round && d < l.BackoffMax; i++ {
		d *= 2
	}
	return min(d, l.BackoffMax)
}

func (l *Loop) wait(ctx context.Context, d time.Duration) bool {
	if l.Wait != nil {
		return l.Wait(ctx, d)
	}
	return clock.Sleep(ctx, l.Clock, d)
}

// ReadEvents reads events from body, the response to a request whose
// context is ctx and cancel its cancel, and passes each to fn until the
// body ends, fn returns an error, or the stream is silent (not even a
// ping) for idle on c: then cancel ends the request with idleErr. The
// error returned is the context's cause when there is one.
func ReadEvents(ctx context.Context, cancel context.CancelCauseFunc, c clock.Timers, body io.Reader, idle time.Duration,
	idleErr error, fn func(events.Event) error) error {
	if c == nil {
		c = clock.Real{}
	}
	t := c.AfterFunc(idle, func() { cancel(fmt.Errorf("%w: event stream silent for %s", idleErr, idle)) })
	defer t.Stop()
	r := events.NewReader(body)
	r.Activity = func() { t.Reset(idle) }
	for {
		ev, err := r.Next()
		if err == nil {
			err = fn(ev)
		}
		if err != nil {
			if cause := context.Cause(ctx); cause != nil {
				err = cause
			}
			return err
		}
	}
}
