// Watch: a push stream (GET /-/events) kept open to one relay, a sync as
// soon as it announces a newer generation.
package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/events"
	"github.com/relayd/relayd/pkg/relayclient"
	"github.com/relayd/relayd/pkg/wire"
)

// errResync ends a stream so that it reopens reporting the generation
// just synced: the relay's presence list shows what agents have.
var errResync = fmt.Errorf("agent: %w with the new generation", relayclient.ErrReconnect)

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
	loop := relayclient.Loop{
		Clock: a.clock, BackoffMin: a.cfg.BackoffMin, BackoffMax: a.cfg.BackoffMax, Wait: a.wait,
		Candidates: func() []*url.URL { return a.relays.Candidates(0) },
		Stream: func(ctx context.Context, base *url.URL, _ bool) (bool, error) {
			return a.watchOne(ctx, base, wants, synced)
		},
		BeforeRound: func(ctx context.Context) {
			if a.relays.Stale() {
				a.refreshRelays(ctx)
			}
		},
		RoundFailed: a.refreshRelays,
		Failed: func(base *url.URL, got bool, err error) {
			a.relays.Failed(base)
			if got {
				a.log.Info().Err(err).Str("relay", base.Redacted()).Msg("event stream ended; reconnecting")
			} else {
				a.log.Warn().Err(err).Str("relay", base.Redacted()).Msg("event stream failed; trying the next relay")
			}
		},
		Replaced: func(err error, n int, d time.Duration) {
			ev := a.log.Debug()
			if n == 1 {
				ev = a.log.Warn()
			}
			ev.Err(err).Str("id", a.cfg.ID).Dur("retry_in", d).Msg("event stream replaced by another with this agent id: is a second agent running with this id? Reconnecting with backoff")
		},
	}
	return loop.Run(ctx)
}

// streamRefused is the error of a stream request answered other than 200;
// a 503 with a Retry-After of more than a second (too_many_streams: the
// relay holds all the streams it may) says when to come back.
func streamRefused(resp *http.Response) error {
	return relayclient.WithRetryAfter(resp, statusError(resp.StatusCode, wire.EventsPath))
}

// replacedError is ErrReplaced with the relay and its reason.
func replacedError(base *url.URL, ev events.Event) error {
	var why wire.Replaced
	_ = json.Unmarshal(ev.Data, &why)
	return fmt.Errorf("%w (%s: %s)", ErrReplaced, base.Redacted(), why.Reason)
}

// ErrReplaced: the relay ended the event stream because a newer stream
// with this agent's id came from the same address.
var ErrReplaced = relayclient.ErrReplaced

// replacedBackoff is the wait (before jitter) after the nth replacement
// in a row.
var replacedBackoff = relayclient.ReplacedBackoff

// wait pauses for d unless ctx ends first; it reports whether it waited.
func (a *Agent) wait(ctx context.Context, d time.Duration) bool {
	if a.sleep != nil {
		return a.sleep(ctx, d)
	}
	return clock.Sleep(ctx, a.clock, d)
}

// syncLoop runs the syncs Watch asks for, one at a time, newest wanted
// generation first; a failed sync is tried again after BackoffMax. A sync
// an announcement asks for waits a random part of SyncJitter first (see
// spread); announcements meanwhile join it.
func (a *Agent) syncLoop(ctx context.Context, wants <-chan uint64, synced chan uint64, onSync func(Result, error)) {
	var retry, turn <-chan struct{}
	var pending uint64
	for {
		select {
		case <-ctx.Done():
			return
		case g := <-wants:
			pending = max(pending, g)
			if turn == nil && pending > a.state.synced() {
				turn = a.spread()
			}
		case <-retry:
			retry = nil
		case <-turn:
			turn = nil
		}
		if pending == 0 || pending <= a.state.synced() {
			pending, turn = 0, nil
			continue
		}
		if turn != nil {
			continue // its turn comes
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
			retry = a.after(a.cfg.BackoffMax)
			continue
		}
		if res.Generation >= pending || res.Ring != "" {
			// Done; or the gates decided (what they hold back comes with
			// the next gates event).
			pending = 0
		} else {
			// Every relay was behind the announcement: look again soon.
			retry = a.after(a.cfg.BackoffMin)
		}
		offer(synced, res.Generation) // never blocks: a stream may not be open
	}
}

// spread returns when the sync of a new announcement may start: after a
// random delay within SyncJitter, so that the agents of a relay, told
// within a second, reach it spread over the window rather than at once.
// A closed channel when there is no jitter.
func (a *Agent) spread() <-chan struct{} {
	if a.cfg.SyncJitter <= 0 {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return a.after(a.jitter(a.cfg.SyncJitter))
}

// after returns a channel closed once d has passed on the agent's clock.
func (a *Agent) after(d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	a.clock.AfterFunc(d, func() { close(ch) })
	return ch
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
	resp, err := a.openStream(ctx, base, reported)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		followSyncs(ctx, synced, reported, func() { cancel(errResync) })
	}()
	defer func() { cancel(nil); <-followed }() // before the next stream follows synced
	err = relayclient.ReadEvents(ctx, cancel, a.clock, resp.Body, a.cfg.StreamIdle, ErrStalled, func(ev events.Event) error {
		got = true
		return a.onEvent(base, ev, wants)
	})
	return got, err
}

// onEvent acts on one event of base's stream: a newer generation is
// handed to the sync loop, a relay list replaces the agent's; a
// replacement ends the stream.
func (a *Agent) onEvent(base *url.URL, ev events.Event, wants chan uint64) error {
	switch ev.Kind {
	case wire.KindReplaced:
		return replacedError(base, ev)
	case wire.KindCatalog:
		g, err := wire.ParseGeneration(ev.Data)
		if err != nil {
			a.log.Warn().Err(err).Str("relay", base.Redacted()).Msg("bad event")
			return nil
		}
		if a.cfg.OnAnnounce != nil {
			a.cfg.OnAnnounce(g.Generation)
		}
		if g.Generation > a.state.synced() {
			offer(wants, g.Generation)
		}
	case wire.KindGates:
		if a.tuf.HasRolloutRole() {
			offer(wants, gatesWish) // the ring's gate may have moved
		}
	case wire.KindRelays:
		var doc wire.Relays
		if json.Unmarshal(ev.Data, &doc) == nil {
			a.relays.Set(doc)
		}
	}
	return nil
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
// generation reported; the response headers must arrive within
// StallTimeout. A refusal is an error.
func (a *Agent) openStream(ctx context.Context, base *url.URL, reported uint64) (*http.Response, error) {
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
	a.stats.requests.Add(1)
	resp, err := a.guard(true).Do(a.stream, req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, streamRefused(resp)
	}
	return resp, nil
}
