// Staged rollouts (issue 15): when the trusted root lists a rollout role,
// a sync installs the generation the signed gates open for the agent's
// ring, not simply the newest. The ring comes from Config.Group and the
// patterns the rollout key signed (wire.Gates.RingOf): a relay can serve
// old, forged or no gates, never put the agent in another ring. Without
// valid gates the agent installs nothing newer than it has.
package agent

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/wire"
)

// ErrNoGates: the trusted root lists a rollout role and no relay served
// gates that verify (none, forged, replayed, expired), and none valid are
// held: the agent installs nothing newer than it has.
var ErrNoGates = errors.New("agent: no valid rollout gates")

// gatesWish is what a KindGates event asks of Watch's sync loop: a sync,
// whatever the generation synced.
const gatesWish = math.MaxUint64

// gated is what the gates allow of the newest catalog.
type gated struct {
	c    *catalog.Catalog // the catalog to install; nil: keep what is installed
	ring string           // the agent's ring; "" without a rollout role
	held uint64           // the newest generation, when the gate holds it back
}

// gate applies the rollout gates to newest, the newest verified catalog:
// without a rollout role in the trusted root it is installed as it is;
// else the ring's open generation: newest when open at it (or later),
// an older one verified by its pin (tufclient.Pinned, objects fetched by
// consistent name), or nothing new while the ring is not open or is
// behind what is installed.
func (a *Agent) gate(ctx context.Context, newest *catalog.Catalog) (gated, error) {
	if !a.tuf.HasRolloutRole() {
		return gated{c: newest}, nil
	}
	g, err := a.gates(ctx)
	if err != nil {
		return gated{}, fmt.Errorf("%w: %w; keeping generation %d", ErrNoGates, err, a.state.synced())
	}
	i := g.RingOf(a.cfg.Group)
	if i < 0 {
		return gated{}, fmt.Errorf("%w: the gates list no ring; keeping generation %d", ErrNoGates, a.state.synced())
	}
	ring, open := g.Rings[i].Name, g.Rings[i].Open
	out := gated{ring: ring}
	switch {
	case open.Version >= newest.Generation:
		out.c = newest
		return out, nil
	case open.Version == 0 || open.Version < a.state.synced():
		a.log.Info().Str("ring", ring).Uint64("open", open.Version).Uint64("newest", newest.Generation).
			Msg("the ring's gate holds the newest generation back; keeping what is installed")
		out.held = newest.Generation
		return out, nil
	}
	var c *catalog.Catalog
	err = a.retry(ctx, "pinned generation", func(base *url.URL) error {
		var perr error
		c, perr = a.tuf.Pinned(ctx, &relayFetcher{a: a, base: base}, open)
		return perr
	})
	if err != nil {
		return gated{}, fmt.Errorf("agent: generation %d, which ring %q is open at: %w", open.Version, ring, err)
	}
	out.c, out.held = c, newest.Generation
	return out, nil
}

// gates fetches the gates from the relays in turn until one serves gates
// that verify and are not older than the held ones; when none does, the
// held gates, if still valid. The error says what each relay served.
func (a *Agent) gates(ctx context.Context) (*wire.Gates, error) {
	var errs []error
	var held []byte
	if _, info, ok := a.tuf.Gates(); ok {
		held = info.Raw
	}
	for _, base := range a.relays.Candidates(0) {
		raw, err := a.readMetaSince(ctx, base, wire.GatesName, wire.MaxGatesSize, held)
		if err == nil {
			var g *wire.Gates
			if g, _, err = a.tuf.VerifyGates(raw); err == nil {
				return g, nil
			}
			a.log.Warn().Err(err).Str("relay", base.Redacted()).Msg("rollout gates refused")
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		errs = append(errs, fmt.Errorf("%s: %w", base.Host, err))
	}
	if g, _, ok := a.tuf.Gates(); ok {
		return g, nil
	}
	if len(errs) == 0 {
		return nil, errors.New("no relay to ask")
	}
	return nil, errors.Join(errs...)
}
