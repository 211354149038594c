// Watch: a push stream (GET /-/events) kept open to one relay, a sync as
// soon as it announces a newer generation.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/relayd/relayd/pkg/events"
	"github.com/relayd/relayd/pkg/wire"
)

// errResync ends a stream so that it reopens reporting the generation
// just synced: the relay's presence list shows what agents have.
var errResync = errors.New("agent: reconnect with the new generation")

// Watch keeps an event stream open to one relay until ctx ends, and syncs
// (as Sync) whenever the relay announces a generation newer than the one
// Dir has, including the one current when the stream opens. onSync, if
// set, is told the outcome of every sync. When the stream ends or stays
// silent for StreamIdle, Watch reconnects, to another relay when the
// one it had failed, with backoff when all did. After a sync it reconnects
// once, reporting the new generation, so the relay's presence list stays
// true. It returns nil when ctx ends.
func (a *Agent) Watch(ctx context.Context, onSync func(Result, error)) error {
	wants := make(chan uint64, 1)
	synced := make(chan uint64, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.syncLoop(ctx, wants, synced, onSync)
	}()
	defer func() { <-done }()
	round, replaced := 0, 0
	for ctx.Err() == nil {
		if a.relays.stale(a.cfg.Refresh) {
			a.refreshRelays(ctx)
		}
		delivered := false
		var lastErr error
		var comeBack time.Duration // the longest Retry-After of the round
		for _, base := range a.relays.candidates() {
			got, err := a.watchOne(ctx, base, wants, synced)
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, errResync) {
				delivered = true
				break
			}
			if errors.Is(err, ErrReplaced) {
				replaced++
				if !a.afterReplaced(ctx, err, replaced) {
					return nil
				}
				delivered = true
				break
			}
			replaced = 0
			if ra := (*retryAfter)(nil); errors.As(err, &ra) {
				comeBack = max(comeBack, ra.d)
			}
			lastErr = err
			a.relays.failed(base)
			if got {
				delivered = true
				a.log.Info().Err(err).Str("relay", base.Redacted()).Msg("event stream ended; reconnecting")
				break
			}
			a.log.Warn().Err(err).Str("relay", base.Redacted()).Msg("event stream failed; trying the next relay")
		}
		if delivered {
			round = 0
			continue
		}
		round++
		a.refreshRelays(ctx)
		if comeBack > 0 {
			// Every relay refused for now and one said when to come back
			// (the relay spreads its Retry-After already).
			if !a.wait(ctx, comeBack) {
				return nil
			}
			continue
		}
		// The retry budget bounds one request, not a watch: wait and
		// go on until ctx ends.
		if !a.backoff(ctx, round, time.Now().Add(a.cfg.BackoffMax+time.Second)) && ctx.Err() != nil {
			return nil
		}
		a.log.Debug().Err(lastErr).Int("round", round).Msg("no relay holds an event stream; retrying")
	}
	return nil
}

// streamRefused is the error of a stream request answered other than 200;
// a 503 with a Retry-After of more than a second (too_many_streams: the
// relay holds all the streams it may) says when to come back.
func streamRefused(resp *http.Response) error {
	err := statusError(resp.StatusCode, wire.EventsPath)
	if secs, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && secs > 1 && resp.StatusCode == http.StatusServiceUnavailable {
		return &retryAfter{err: err, d: min(time.Duration(secs)*time.Second, 5*time.Minute)}
	}
	return err
}

// replacedError is ErrReplaced with the relay and its reason.
func replacedError(base *url.URL, ev events.Event) error {
	var why wire.Replaced
	_ = json.Unmarshal(ev.Data, &why)
	return fmt.Errorf("%w (%s: %s)", ErrReplaced, base.Redacted(), why.Reason)
}

// retryAfter is a refusal that said when to come back.
type retryAfter struct {
	err error
	d   time.Duration
}

func (r *retryAfter) Error() string { return fmt.Sprintf("%v (retry after %s)", r.err, r.d) }
func (r *retryAfter) Unwrap() error { return r.err }

// ErrReplaced: the relay ended the event stream because a newer stream
// with this agent's id came from the same address.
var ErrReplaced = errors.New("agent: event stream replaced by a newer one with this id")

// replacedBackoff is the wait (before jitter: half to all of it) after
// the nth replacement in a row: 5 s, doubling, at most 2 min.
func replacedBackoff(n int) time.Duration {
	return min(5*time.Second<<min(n-1, 5), 2*time.Minute)
}

// afterReplaced waits after the nth replacement in a row: another process
// with this agent's id, at this address, holds the stream now; coming
// back at once would push each other off for good. Said once per run of
// replacements. It reports false when ctx ended.
func (a *Agent) afterReplaced(ctx context.Context, err error, n int) bool {
	d := replacedBackoff(n)
	d = d/2 + rand.N(d/2+1)
	ev := a.log.Debug()
	if n == 1 {
		ev = a.log.Warn()
	}
	ev.Err(err).Str("id", a.cfg.ID).Dur("retry_in", d).Msg("event stream replaced by another with this agent id: is a second agent running with this id? Reconnecting with backoff")
	return a.wait(ctx, d)
}

// wait pauses for d unless ctx ends first; it reports whether it waited.
func (a *Agent) wait(ctx context.Context, d time.Duration) bool {
	if a.sleep != nil {
		return a.sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// syncLoop runs the syncs Watch asks for, one at a time, newest wanted
// generation first; a failed sync is tried again after BackoffMax.
func (a *Agent) syncLoop(ctx context.Context, wants <-chan uint64, synced chan uint64, onSync func(Result, error)) {
	var retry <-chan time.Time
	var pending uint64
	for {
		select {
		case <-ctx.Done():
			return
		case g := <-wants:
			pending = max(pending, g)
		case <-retry:
			retry = nil
		}
		if pending == 0 || pending <= a.state.synced() {
			pending = 0
			continue
		}
		want := pending
		res, err := a.syncTo(ctx, want)
		if ctx.Err() != nil {
			return
		}
		if onSync != nil {
			onSync(res, err)
		}
		if err != nil {
			a.log.Warn().Err(err).Uint64("generation", want).Msg("sync failed; trying again later")
			retry = time.After(a.cfg.BackoffMax)
			continue
		}
		if res.Generation >= pending {
			pending = 0
		} else {
			// Every relay was behind the announcement: look again soon.
			retry = time.After(a.cfg.BackoffMin)
		}
		offer(synced, res.Generation) // never blocks: a stream may not be open
	}
}

// offer hands generation g to the sync loop, replacing an older wish.
func offer(ch chan uint64, g uint64) {
	for {
		select {
		case ch <- g:
			return
		default:
		}
		select {
		case old := <-ch:
			g = max(g, old)
		default:
		}
	}
}

// watchOne reads one relay's event stream until it ends; got reports
// whether any event arrived. A sync that completes ends it with
// errResync.
func (a *Agent) watchOne(ctx context.Context, base *url.URL, wants chan uint64, synced chan uint64) (got bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	reported := a.state.synced()
	resp, err := a.openStream(ctx, cancel, base, reported)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	idle := time.AfterFunc(a.cfg.StreamIdle, func() {
		cancel(fmt.Errorf("%w: event stream silent for %s", ErrStalled, a.cfg.StreamIdle))
	})
	defer idle.Stop()
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		followSyncs(ctx, synced, reported, func() { cancel(errResync) })
	}()
	defer func() { cancel(nil); <-followed }() // before the next stream follows synced
	r := events.NewReader(resp.Body)
	r.Activity = func() { idle.Reset(a.cfg.StreamIdle) }
	for {
		ev, err := r.Next()
		if err != nil {
			if c := context.Cause(ctx); c != nil {
				err = c
			}
			return got, err
		}
		got = true
		switch ev.Kind {
		case wire.KindReplaced:
			return got, replacedError(base, ev)
		case wire.KindCatalog:
			g, err := wire.ParseGeneration(ev.Data)
			if err != nil {
				a.log.Warn().Err(err).Str("relay", base.Redacted()).Msg("bad event")
				continue
			}
			if a.cfg.OnAnnounce != nil {
				a.cfg.OnAnnounce(g.Generation)
			}
			if g.Generation > a.state.synced() {
				offer(wants, g.Generation)
			}
		case wire.KindRelays:
			var doc wire.Relays
			if json.Unmarshal(ev.Data, &doc) != nil {
				continue
			}
			a.relays.set(a.relayURLs(doc))
		}
	}
}

// followSyncs calls resync when the sync loop completes a generation newer
// than reported, the one the stream was opened with, and returns then or
// when ctx ends. A generation it takes from synced after ctx ended (the
// stream ended meanwhile: both were ready) is handed back for the next
// stream, which may have been opened reporting an older one; dropped, the
// relay would list this agent at that older generation until the next
// sync.
func followSyncs(ctx context.Context, synced chan uint64, reported uint64, resync func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case g := <-synced:
			if ctx.Err() != nil {
				offer(synced, g)
				return
			}
			if g > reported {
				resync()
				return
			}
		}
	}
}

// openStream asks base for its event stream as an agent that holds
// generation reported; cancel ends ctx, with the cause, when no response
// headers arrive within StallTimeout. A refusal is an error.
func (a *Agent) openStream(ctx context.Context, cancel context.CancelCauseFunc, base *url.URL, reported uint64) (*http.Response, error) {
	q := url.Values{}
	q.Set(wire.AgentParam, a.cfg.ID)
	q.Set(wire.GenerationParam, strconv.FormatUint(reported, 10))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.String()+wire.EventsPath+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("User-Agent", a.cfg.UserAgent)
	req.Header.Set(wire.AgentHeader, a.cfg.ID)
	headers := time.AfterFunc(a.cfg.StallTimeout, func() {
		cancel(fmt.Errorf("%w: no response headers within %s", ErrStalled, a.cfg.StallTimeout))
	})
	a.stats.requests.Add(1)
	resp, err := a.stream.Do(req)
	headers.Stop()
	if err != nil {
		if c := context.Cause(ctx); c != nil {
			err = c
		}
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, streamRefused(resp)
	}
	return resp, nil
}
