// Pre-positioning (issue 15): a verifying proxy follows the newest
// generation whatever the rollout gates let agents install, and fetches
// at once, at background priority (within the upstream windows, behind
// agents' fills), the new version of every path it holds an older
// version of, and the catalog paths of --prefetch-include. When a ring's
// gate opens, its agents find the bytes on their branch relay: no WAN
// transfer. A mirror syncs every generation whole anyway.
package node

import (
	"context"
	"time"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/glob"
	"github.com/relayd/relayd/pkg/hierarchy"
	"github.com/relayd/relayd/pkg/proxycache"
)

// preposPoll is how often a new generation's pre-positioning looks
// whether the previous job has finished.
const preposPoll = time.Second

// prepos is the node's pre-positioning: its own prefetch job (the admin
// API's stays free), and the newest generation to work on.
type prepos struct {
	jobs    *proxycache.Prefetcher
	include *glob.Filter
	kick    chan uint64 // generations gone live
	clock   clock.Timers
}

// openPrepos prepares a verifying proxy's pre-positioning
// (Config.Validate checked the patterns).
func (n *Node) openPrepos(cfg Config, clk clock.Clock) {
	if n.cache == nil || n.mirror == nil {
		return
	}
	var f *glob.Filter
	if len(cfg.PrefetchInclude) > 0 {
		f, _ = glob.New(cfg.PrefetchInclude)
	}
	timers, ok := clk.(clock.Timers)
	if !ok {
		timers = clock.Real{}
	}
	n.prepos = &prepos{jobs: proxycache.NewPrefetcher(n.cache, n.log.With().Str("component", "prepos").Logger(), clk),
		include: f, kick: make(chan uint64, 1), clock: timers}
}

// prepositionSoon hands generation g, just live, to the pre-positioning.
func (n *Node) prepositionSoon(g uint64) {
	if n.prepos == nil {
		return
	}
	for {
		select {
		case n.prepos.kick <- g:
			return
		default:
		}
		select {
		case old := <-n.prepos.kick:
			g = max(g, old)
		default:
		}
	}
}

// preposition runs the pre-positioning until ctx ends: one job per new
// generation, after the previous job has finished.
func (n *Node) preposition(ctx context.Context) error {
	var done uint64
	for {
		var g uint64
		select {
		case <-ctx.Done():
			return nil
		case g = <-n.prepos.kick:
		}
		if g <= done {
			continue
		}
		for n.prepos.jobs.Status().Running {
			if !clock.Sleep(ctx, n.prepos.clock, preposPoll) {
				return nil
			}
		}
		l := n.mirror.Live()
		if l == nil {
			continue
		}
		done = l.Catalog.Generation
		keys := n.prepositionKeys(l.Catalog)
		if len(keys) == 0 {
			continue
		}
		if _, err := n.prepos.jobs.Start(hierarchy.Background(ctx), keys); err != nil {
			n.log.Warn().Err(err).Uint64("generation", done).Msg("pre-positioning not started")
			continue
		}
		n.log.Info().Uint64("generation", done).Int("objects", len(keys)).Msg("pre-positioning the new generation")
	}
}

// prepositionKeys lists the paths of c to fetch ahead: those the cache
// holds another version of, and those --prefetch-include selects that
// it does not hold yet; at most proxycache.MaxPrefetch.
func (n *Node) prepositionKeys(c *catalog.Catalog) []string {
	var keys []string
	for _, o := range c.Objects {
		if len(keys) >= proxycache.MaxPrefetch {
			break
		}
		e, err := n.store.Get(o.Path)
		held := err == nil
		if held && e.Digest == o.Digest {
			continue // this version is here
		}
		if held || (n.prepos.include != nil && n.prepos.include.Match(o.Path)) {
			keys = append(keys, o.Path)
		}
	}
	return keys
}
