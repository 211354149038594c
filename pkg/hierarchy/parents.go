// Which upstream to ask: the parent group's current relays, learned from
// {seed}/-/relays and refreshed, in random order, those that failed
// lately last; the configured seeds stay as the last resort.
package hierarchy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"time"

	"github.com/relayd/relayd/pkg/wire"
)

// parent is one relay of the parent group.
type parent struct {
	url        *url.URL
	generation uint64 // its live catalog generation; 0: unknown
}

// Run keeps the parent list current until ctx ends: at once, every
// Refresh, and when Refresh is called.
func (c *Client) Run(ctx context.Context) error {
	if len(c.seeds) == 0 {
		return nil
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-c.refresh:
		}
		c.discover(ctx)
		t.Reset(c.cfg.Refresh)
	}
}

// Refresh asks Run to re-read the parent list now.
func (c *Client) Refresh() {
	select {
	case c.refresh <- struct{}{}:
	default:
	}
}

// discover reads /-/relays from a seed, or when no seed answers from a
// relay learned before (the seeds may all have been replaced).
func (c *Client) discover(ctx context.Context) {
	c.mu.Lock()
	known := make([]*url.URL, 0, len(c.learned))
	for _, p := range c.learned {
		known = append(known, p.url)
	}
	c.mu.Unlock()
	for _, base := range append(c.shuffled(c.seeds), c.shuffled(known)...) {
		list, err := c.fetchRelays(ctx, base)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			c.log.Debug().Err(err).Str("upstream", base.Redacted()).Msg("read parent relays")
			continue
		}
		c.SetParents(list)
		return
	}
}

func (c *Client) fetchRelays(ctx context.Context, base *url.URL) (wire.Relays, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout+c.cfg.StallTimeout)
	defer cancel()
	var list wire.Relays
	if wait, until := c.plain.skip(base, wire.RelaysPath); wait {
		return list, fmt.Errorf("%s%s: answered 404 lately; not asked again before %s", base.Redacted(), wire.RelaysPath, until.Format(time.TimeOnly))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.String()+wire.RelaysPath, nil)
	if err != nil {
		return list, err
	}
	c.setHeaders(ctx, req)
	resp, err := c.http.Do(req)
	if err != nil {
		return list, err
	}
	defer resp.Body.Close()
	c.notRelay(base, wire.RelaysPath, resp.StatusCode)
	if resp.StatusCode != http.StatusOK {
		// A plain static server (404) is a parent itself: the seeds
		// are used as configured (and asked for relays less often).
		return list, fmt.Errorf("%s/-/relays: status %d", base.Redacted(), resp.StatusCode)
	}
	list, err = wire.DecodeRelays(resp.Body)
	if err != nil {
		return list, fmt.Errorf("%s: %w", base.Redacted(), err)
	}
	return list, nil
}

// SetParents replaces the learned parent relays with list (from
// /-/relays or a "relays" event). Entries that are not valid base URLs
// are skipped.
func (c *Client) SetParents(list wire.Relays) {
	var ps []parent
	for _, r := range list.Relays {
		u, err := ParseBase(r.URL)
		if err != nil {
			c.log.Warn().Err(err).Msg("parent relay list: skipping an entry")
			continue
		}
		ps = append(ps, parent{url: u, generation: r.Generation})
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].url.String() < ps[j].url.String() })
	c.mu.Lock()
	changed := !slices.EqualFunc(ps, c.learned, func(a, b parent) bool { return a.url.String() == b.url.String() })
	c.learned = ps
	c.mu.Unlock()
	if changed {
		urls := make([]string, len(ps))
		for i, p := range ps {
			urls[i] = p.url.Redacted()
		}
		c.log.Info().Strs("parents", urls).Str("group", list.Group).Msg("parent relays")
	}
}

// Parents returns the upstreams in use: the learned parent relays, or
// the seeds when none were learned.
func (c *Client) Parents() []string {
	var out []string
	for _, u := range c.candidates(0) {
		out = append(out, u.String())
	}
	sort.Strings(out)
	return out
}

// candidates returns whom to ask, in order: learned relays that have
// generation want (or whose generation is unknown), in random order;
// then learned relays behind want; then seeds not among the learned.
// Within each, relays that failed lately come last.
func (c *Client) candidates(want uint64) []*url.URL {
	c.mu.Lock()
	learned := slices.Clone(c.learned)
	c.mu.Unlock()
	rand.Shuffle(len(learned), func(i, j int) { learned[i], learned[j] = learned[j], learned[i] })
	var ahead, behind []*url.URL
	seen := map[string]bool{}
	for _, p := range learned {
		seen[p.url.String()] = true
		if want > 0 && p.generation > 0 && p.generation < want {
			behind = append(behind, p.url)
		} else {
			ahead = append(ahead, p.url)
		}
	}
	var seeds []*url.URL
	for _, u := range c.seeds {
		if !seen[u.String()] {
			seeds = append(seeds, u)
		}
	}
	out := c.coolLast(ahead)
	out = append(out, c.coolLast(behind)...)
	return append(out, c.shuffled(seeds)...)
}

// shuffled returns bases in random order, those in backoff last.
func (c *Client) shuffled(bases []*url.URL) []*url.URL {
	out := slices.Clone(bases)
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return c.coolLast(out)
}

// coolLast moves the bases in backoff to the end, keeping the order.
func (c *Client) coolLast(bases []*url.URL) []*url.URL {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*url.URL, 0, len(bases))
	var cooling []*url.URL
	for _, u := range bases {
		if now.Before(c.backoff[u.String()]) {
			cooling = append(cooling, u)
		} else {
			out = append(out, u)
		}
	}
	return append(out, cooling...)
}
