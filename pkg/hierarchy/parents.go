// Which upstream to ask: the parent group's current relays, learned from
// {seed}/-/relays and refreshed, in random order, those that failed
// lately last; the configured seeds stay as the last resort
// (relayclient.List holds the list; this file says how a relay uses it).
package hierarchy

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/relayd/relayd/pkg/relayclient"
	"github.com/relayd/relayd/pkg/wire"
)

// failedFor is how long a parent that failed is asked after the others.
const failedFor = 5 * time.Second

// newParentList is the relay's list of parents: a fresh random order
// per request, so that the relays of a group spread their misses over
// the parent group.
func (c *Client) newParentList() *relayclient.List {
	return relayclient.NewList(relayclient.ListConfig{Seeds: c.seeds, Fallback: c.fallback, FailedFor: failedFor,
		Refresh: c.cfg.Refresh, Clock: c.clock, Parse: ParseBase,
		OnChange: func(doc wire.Relays, learned []relayclient.Relay, skipped int) {
			urls := make([]string, len(learned))
			for i, r := range learned {
				urls[i] = r.URL.Redacted()
			}
			if skipped > 0 {
				c.log.Warn().Int("skipped", skipped).Msg("parent relay list: entries that are not base URLs skipped")
			}
			c.log.Info().Strs("parents", urls).Str("group", doc.Group).Msg("parent relays")
		}})
}

// Run keeps the parent list current until ctx ends: at once, every
// Refresh, and when Refresh is called.
func (c *Client) Run(ctx context.Context) error {
	if len(c.seeds) == 0 {
		return nil
	}
	c.list.Run(ctx, c.fetchRelays, c.relaysFailed)
	return nil
}

// Refresh asks Run to re-read the parent list now.
func (c *Client) Refresh() { c.list.Kick() }

// discover reads /-/relays from a seed, or when no seed answers from a
// relay learned before (the seeds may all have been replaced).
func (c *Client) discover(ctx context.Context) { c.list.Discover(ctx, c.fetchRelays, c.relaysFailed) }

func (c *Client) relaysFailed(base *url.URL, err error) {
	c.log.Debug().Err(err).Str("upstream", base.Redacted()).Msg("read parent relays")
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
func (c *Client) SetParents(list wire.Relays) { c.list.Set(list) }

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

// candidates returns whom to ask, in order (relayclient.List.Candidates):
// learned relays that have generation want (or whose generation is
// unknown), then learned relays behind want, then seeds not among the
// learned; relays that failed lately come last.
func (c *Client) candidates(want uint64) []*url.URL { return c.list.Candidates(want) }

// shuffled returns bases in random order, those in backoff last.
func (c *Client) shuffled(bases []*url.URL) []*url.URL { return c.list.Shuffled(bases) }

// markFailed puts base into a short backoff so the next requests try the
// others first.
func (c *Client) markFailed(base *url.URL) { c.list.Failed(base) }
