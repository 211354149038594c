package ratelog

import (
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/clock"
)

// DefaultEvery is the interval used when New is given zero: one line per
// key per 10 seconds.
const DefaultEvery = 10 * time.Second

// MaxKeys bounds the keys a Limiter tracks. Past it, lines of new keys
// share one overflow key (OverflowKey), so they are limited together.
const MaxKeys = 1024

// OverflowKey is the key of lines whose own key did not fit in MaxKeys.
const OverflowKey = "ratelog: other"

// Field is the name of the count of held-back lines on the next line.
const Field = "repeated"

// Limiter lets one line per key per interval through. It is safe for
// concurrent use; the zero value is not usable (use New).
type Limiter struct {
	clk   clock.Clock
	every time.Duration

	mu   sync.Mutex
	keys map[string]*keyState
}

type keyState struct {
	last time.Time // when a line of this key was last let through
	held int64     // lines held back since
}

// New returns a Limiter on clk letting one line per key through every
// interval (DefaultEvery if every <= 0).
func New(clk clock.Clock, every time.Duration) *Limiter {
	if every <= 0 {
		every = DefaultEvery
	}
	return &Limiter{clk: clk, every: every, keys: map[string]*keyState{}}
}

// Allow reports whether a line of key may be logged now and, if so, how
// many lines of key were held back since the last one let through.
func (l *Limiter) Allow(key string) (ok bool, held int64) {
	now := l.clk.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.keys[key]
	if s == nil {
		if len(l.keys) >= MaxKeys {
			l.sweep(now)
		}
		if len(l.keys) >= MaxKeys {
			key = OverflowKey
			s = l.keys[key]
		}
	}
	if s == nil {
		l.keys[key] = &keyState{last: now}
		return true, 0
	}
	if now.Sub(s.last) < l.every {
		s.held++
		return false, 0
	}
	held, s.held, s.last = s.held, 0, now
	return true, held
}

// sweep forgets keys that are quiet (nothing held back, interval over):
// their next line would be let through anyway.
func (l *Limiter) sweep(now time.Time) {
	for k, s := range l.keys {
		if s.held == 0 && now.Sub(s.last) >= l.every {
			delete(l.keys, k)
		}
	}
}

// Event starts a line of key at level on log, with Field set to the
// number of lines held back before it (when any), or returns nil when
// the line is held back. zerolog's methods do nothing on a nil event, so
// a caller writes the line as usual:
//
//	lim.Event(&log, zerolog.WarnLevel, "upstream failed").Err(err).Msg("upstream failed")
func (l *Limiter) Event(log *zerolog.Logger, level zerolog.Level, key string) *zerolog.Event {
	e := log.WithLevel(level)
	if e == nil {
		return nil // below the logger's level: nothing to limit or count
	}
	ok, held := l.Allow(key)
	switch {
	case !ok:
		e.Discard().Msg("") // writes nothing; returns the event to zerolog's pool
		return nil
	case held > 0:
		return e.Int64(Field, held)
	}
	return e
}
