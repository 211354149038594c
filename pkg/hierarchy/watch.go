// The child's side of push and reports: an event stream kept open to one
// parent, and periodic reports posted to every parent, both over
// connections the child opens.
package hierarchy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/events"
	"github.com/relayd/relayd/pkg/wire"
)

// streamIdle is how long an event stream may be silent (parents ping
// every 15 s) before the child takes the parent for gone.
const streamIdle = 45 * time.Second

// ErrNoEvents: the upstream serves no event stream (a plain server).
var ErrNoEvents = errors.New("hierarchy: upstream serves no event stream")

// Watch keeps an event stream open to one upstream until ctx ends and
// calls fn for each event, in order. When the stream ends it reconnects,
// to another upstream when there is one, with backoff. A "relays" event
// also updates the parent list. A stream the parent replaced with a newer
// one of this relay's identity (another relay with the same group and
// node name, see ErrReplaced) is reopened only after seconds, longer each
// time in a row, and said once in the log. Watch returns nil when ctx
// ends.
func (c *Client) Watch(ctx context.Context, fn func(events.Event)) error {
	if len(c.seeds) == 0 {
		return nil
	}
	backoff := time.Duration(0)
	replaced := 0 // replacements in a row
	for ctx.Err() == nil {
		parents := c.candidates(0)
		cands := append(parents, c.shuffled(c.fallback)...)
		var err error
		delivered, allPlain := false, true
		for i, base := range cands {
			delivered, err = c.stream(ctx, base, i >= len(parents), replaced > 0, fn)
			if ctx.Err() != nil {
				return nil
			}
			if delivered || errors.Is(err, ErrReplaced) {
				break // it worked for a while: start over from the top
			}
			if !errors.Is(err, ErrNoEvents) {
				allPlain = false
				c.markFailed(base)
			}
		}
		switch {
		case errors.Is(err, ErrReplaced):
			replaced++
			backoff = replacedBackoff(replaced)
			if replaced == 1 {
				c.log.Warn().Err(err).Str("node", c.cfg.Node).Str("group", c.cfg.Group).Dur("retry_in", backoff).
					Msg("event stream replaced by another with this relay's group and node name: is a second relay running with this name (a cloned host)? Reconnecting with backoff")
			}
		case delivered:
			backoff, replaced = 0, 0
		case allPlain:
			// Nobody upstream pushes: the mirror's interval polling is
			// what is left. Look again now and then.
			backoff = 5 * time.Minute
		default:
			backoff = min(max(2*backoff, 500*time.Millisecond), 30*time.Second)
		}
		if backoff > 0 {
			c.log.Debug().Err(err).Dur("retry_in", backoff).Msg("event stream down")
			// Jitter, so that a parent's children do not come back in
			// lockstep after it restarts.
			if !c.wait(ctx, backoff/2+rand.N(backoff/2+1)) {
				return nil
			}
		}
	}
	return nil
}

// ErrReplaced: the parent ended the event stream because a newer stream
// with this relay's identity came from the same address.
var ErrReplaced = errors.New("hierarchy: event stream replaced by a newer one with this identity")

// replacedBackoff is the wait (before jitter: half to all of it) after
// the nth replacement in a row: 5 s, doubling, at most 2 min. Two relays
// sharing one name then take turns at most every few seconds, less often
// as it goes on, instead of pushing each other off many times a second.
func replacedBackoff(n int) time.Duration {
	return min(5*time.Second<<min(n-1, 5), 2*time.Minute)
}

// wait pauses for d unless ctx ends first; it reports whether it waited.
func (c *Client) wait(ctx context.Context, d time.Duration) bool {
	if c.sleep != nil {
		return c.sleep(ctx, d)
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

// errClaimRefused: a parent refused this relay's credential (401/403).
var errClaimRefused = errors.New("hierarchy: the parent refused this relay's tree credential")

// stream reads one event stream until it ends; got reports whether any
// event arrived. The relays of a fallback's group are not parents: its
// "relays" events are not applied. A relay with a credential for base
// opens the stream as a child relay (signed X-Relay-Path and
// X-Relay-Node); without one, or when the parent refuses the one it has,
// it follows the parent as an agent does: pushes arrive all the same,
// but the parent does not count it as a child relay. quiet logs the
// stream's opening and closing at debug level (while replacements go on).
func (c *Client) stream(ctx context.Context, base *url.URL, fallback, quiet bool, fn func(events.Event)) (got bool, err error) {
	claim := c.claims(base)
	got, err = c.streamAs(ctx, base, fallback, claim, quiet, fn)
	if claim && errors.Is(err, errClaimRefused) && ctx.Err() == nil {
		c.logRefused(base, err)
		return c.streamAs(ctx, base, fallback, false, quiet, fn)
	}
	return got, err
}

// claims reports whether this relay can prove to base that it is a child
// relay: with the tree key, or with a client certificate over https.
func (c *Client) claims(base *url.URL) bool {
	return c.cfg.Auth != nil || (c.cfg.CertClaims && base.Scheme == "https")
}

// logRefused says, at most once per interval (pkg/ratelog), that a
// parent refused the credential.
func (c *Client) logRefused(base *url.URL, err error) {
	c.lim.Event(&c.log, zerolog.WarnLevel, "tree credential refused").Err(err).Str("upstream", base.Redacted()).
		Msg("the parent refused this relay's tree credential (tree-key-file, or the client certificate's name against --node): reports are not taken and the push stream is followed as an agent's")
}

// streamAs is stream, as a child relay (claim) or as an agent.
func (c *Client) streamAs(ctx context.Context, base *url.URL, fallback, claim, quiet bool, fn func(events.Event)) (got bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.String()+wire.EventsPath, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if claim {
		c.setHeaders(ctx, req)
		req.Header.Set(wire.NodeHeader, c.cfg.Node)
		if c.cfg.Auth != nil {
			c.cfg.Auth.Sign(req, wire.EventsPath, nil)
		}
	} else {
		req.Header.Set("User-Agent", c.cfg.UserAgent)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return false, fmt.Errorf("%w: %s", ErrNoEvents, base.Redacted())
	case resp.StatusCode == http.StatusLoopDetected:
		return false, c.refusedAsLoop(base, "the event stream")
	case claim && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden):
		return false, fmt.Errorf("%w: %s/-/events: status %d", errClaimRefused, base.Redacted(), resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return false, fmt.Errorf("%s/-/events: status %d", base.Redacted(), resp.StatusCode)
	}
	lvl := zerolog.InfoLevel
	if quiet {
		lvl = zerolog.DebugLevel
	}
	c.log.WithLevel(lvl).Str("upstream", base.Redacted()).Msg("event stream open")
	idle := time.AfterFunc(streamIdle, func() { cancel(fmt.Errorf("%w: event stream silent for %s", ErrTimeout, streamIdle)) })
	defer idle.Stop()
	r := events.NewReader(resp.Body)
	r.Activity = func() { idle.Reset(streamIdle) }
	for {
		ev, err := r.Next()
		if err != nil {
			if cause := context.Cause(ctx); cause != nil {
				err = cause
			}
			c.log.WithLevel(lvl).Err(err).Str("upstream", base.Redacted()).Msg("event stream closed")
			return got, err
		}
		if ev.Kind == wire.KindReplaced {
			var why wire.Replaced
			_ = json.Unmarshal(ev.Data, &why)
			return got, fmt.Errorf("%w (%s: %s)", ErrReplaced, base.Redacted(), why.Reason)
		}
		got = true
		if ev.Kind == wire.KindRelays && !fallback {
			var list wire.Relays
			if json.Unmarshal(ev.Data, &list) == nil {
				c.SetParents(list)
			}
		}
		fn(ev)
	}
}

// SendReport posts rep to every parent (every relay of the parent group,
// so any of them can show the tree), at most timeout each, in parallel,
// each signed with the tree key. A parent this relay has no credential
// for is skipped (said once in the log): without one, it is not in its
// parents' tree. It returns how many took it.
func (c *Client) SendReport(ctx context.Context, rep wire.Report, timeout time.Duration) int {
	var bases []*url.URL
	claimed := 0
	for _, base := range c.candidates(0) {
		if !c.claims(base) {
			continue
		}
		claimed++
		// A plain server answered 404 here lately: not a relay.
		if skip, _ := c.plain.skip(base, wire.ReportPath); !skip {
			bases = append(bases, base)
		}
	}
	if claimed == 0 {
		c.noCredOnce.Do(func() {
			c.log.Info().Msg("no tree credential for the parents (tree-key-file): this relay follows them as an agent and does not report, so it is not in their tree")
		})
		return 0
	}
	if len(bases) == 0 {
		return 0
	}
	body, err := json.Marshal(rep)
	if err != nil {
		c.log.Error().Err(err).Msg("encode report")
		return 0
	}
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		ok int
	)
	for _, base := range bases {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, base.String()+wire.ReportPath, bytes.NewReader(body))
			if err != nil {
				return
			}
			c.setHeaders(ctx, req)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(wire.NodeHeader, c.cfg.Node)
			if c.cfg.Auth != nil {
				c.cfg.Auth.Sign(req, wire.ReportPath, body)
			}
			resp, err := c.http.Do(req)
			if err != nil {
				c.log.Debug().Err(err).Str("upstream", base.Redacted()).Msg("report not sent")
				return
			}
			resp.Body.Close()
			c.notRelay(base, wire.ReportPath, resp.StatusCode)
			switch {
			case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
				c.logRefused(base, fmt.Errorf("%w: %s/-/report: status %d", errClaimRefused, base.Redacted(), resp.StatusCode))
				return
			case resp.StatusCode/100 != 2:
				c.log.Debug().Int("status", resp.StatusCode).Str("upstream", base.Redacted()).Msg("report refused")
				return
			}
			mu.Lock()
			ok++
			mu.Unlock()
		})
	}
	wg.Wait()
	return ok
}
