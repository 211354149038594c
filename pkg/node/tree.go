// Push and the tree, as the node wires them: announcing new generations
// on /-/events, following the parent's stream, reporting to the parents
// and keeping the children's reports for /v1/tree.
package node

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/relayd/relayd/pkg/admin"
	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/events"
	"github.com/relayd/relayd/pkg/hierarchy"
	"github.com/relayd/relayd/pkg/hops"
	"github.com/relayd/relayd/pkg/mirror"
	"github.com/relayd/relayd/pkg/origin"
	"github.com/relayd/relayd/pkg/treeauth"
	"github.com/relayd/relayd/pkg/wire"
)

// reportTimeout bounds one report to one parent.
const reportTimeout = 5 * time.Second

// timestampPoll is how often an origin looks at its timestamp file.
const timestampPoll = 250 * time.Millisecond

// announce tells the children and agents that generation g is live here.
func (n *Node) announce(g wire.Generation) {
	n.gen.Store(g.Generation)
	if err := n.events.PublishJSON(wire.KindCatalog, g); err != nil {
		n.log.Error().Err(err).Msg("announce generation")
		return
	}
	n.log.Info().Uint64("generation", g.Generation).Str("timestamp", g.Digest).Msg("announced generation")
	n.reportSoon()
}

// mirrorLive is the mirror's OnLive: a generation this relay completed,
// or a new timestamp of the live one. The first one makes a relay that
// follows the metadata ready, so a relay alone (no gossip to carry that)
// announces itself in its relay list too.
func (n *Node) mirrorLive(l *mirror.Live) {
	n.announce(wire.Generation{Generation: l.Catalog.Generation, Digest: l.TimestampDigest.String(), Published: l.Catalog.Published})
	if n.group == nil {
		n.publishRelays()
	}
}

// watchOrigin announces each timestamp `relayd publish` or the re-sign
// writes: a new generation, or the same one freshly signed.
func (n *Node) watchOrigin(ctx context.Context) error {
	n.origin.WatchTimestamp(ctx, timestampPoll, n.log, func(ts origin.Timestamp) {
		n.announce(wire.Generation{Generation: ts.Generation, Digest: ts.Digest.String()})
	})
	return nil
}

// watchParent follows the parent's event stream until ctx ends.
func (n *Node) watchParent(ctx context.Context) error {
	return n.up.Watch(ctx, func(ev events.Event) {
		if ev.Kind != wire.KindCatalog {
			return
		}
		g, err := wire.ParseGeneration(ev.Data)
		if err != nil {
			n.log.Warn().Err(err).Msg("parent sent a bad event")
			return
		}
		if n.mirror != nil {
			// A mirror (or a proxy following the metadata) syncs now and
			// announces once the generation is live here; a new
			// timestamp of the live generation moves no object.
			if l := n.mirror.Live(); l != nil && g.Generation <= l.Catalog.Generation {
				if g.Generation == l.Catalog.Generation && g.Digest != l.TimestampDigest.String() {
					n.mirror.Trigger()
				}
				return
			}
			n.mirror.Want(g.Generation)
			return
		}
		// A plain proxy fetches timestamp.json from its upstream on
		// every request: pass the news on. Its agents verify.
		n.announce(g)
	})
}

// treeAuth loads the tree key and builds the check of the children's
// reports and streams: the tree key, and verified client certificates
// where the TLS port requires them (peer CA).
func (n *Node) treeAuth(cfg Config, clk clock.Clock) (*treeauth.Verifier, error) {
	if cfg.TreeKeyFile != "" {
		k, err := treeauth.LoadKey(cfg.TreeKeyFile)
		if err != nil {
			return nil, err
		}
		n.treeKey = k
	}
	v := &treeauth.Verifier{Key: n.treeKey, Certificates: cfg.TLS.PeerCA != "", Clock: clk}
	if !v.Configured() {
		n.log.Info().Msg("no tree-key-file and no peer-ca: child relays' reports and relay streams are refused (401); agents are served as ever")
	}
	return v, nil
}

// reportSoon asks the report loop to report now.
func (n *Node) reportSoon() {
	select {
	case n.reportNow <- struct{}{}:
	default:
	}
}

// reportLoop reports this relay and its subtree to every parent, every
// ReportInterval and after each new generation.
func (n *Node) reportLoop(ctx context.Context) error {
	t := time.NewTicker(n.cfg.ReportInterval)
	defer t.Stop()
	for {
		n.up.SendReport(ctx, n.selfReport(true), reportTimeout)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-n.reportNow:
		}
	}
}

// takeReport is POST /-/report. A report whose subtree holds this relay's
// own group comes round a cycle of upstreams: refused, or reports would
// nest without end.
func (n *Node) takeReport(r wire.Report) error {
	// An origin has no parent: nothing comes round to it. (And relays
	// started without --group on the origin's host share its name.)
	if g, ok := findGroup(r, n.cfg.Group); ok && n.cfg.Mode != ModeOrigin {
		err := fmt.Errorf("%w: a report from %s/%s lists group %q below it: the upstreams form a cycle", hops.ErrLoop, r.Group, r.Node, g)
		n.refusedLoop(err)
		return err
	}
	return n.tree.Put(r)
}

func findGroup(r wire.Report, group string) (string, bool) {
	if r.Group == group {
		return r.Group, true
	}
	for _, c := range r.Children {
		if g, ok := findGroup(c, group); ok {
			return g, true
		}
	}
	return "", false
}

// selfReport describes this relay, with its children's reports when
// subtree is set.
func (n *Node) selfReport(subtree bool) wire.Report {
	r := wire.Report{Group: n.cfg.Group, Node: n.cfg.Node, Mode: n.cfg.Mode, URL: n.url, Ready: true, Sent: n.clk.Now()}
	r.Generation = n.generation()
	r.MetadataVerified, r.MetadataExpires = n.freshness()
	if err := n.ready(); err != nil {
		r.Ready, r.Problem = false, wire.Printable(err.Error(), 1024)
	}
	if n.up != nil {
		// Parents may be named by a parent's list: made fit for a report,
		// which a grandparent refuses with a rune that does not print.
		for _, u := range n.up.Parents() {
			r.Upstream = append(r.Upstream, wire.Printable(u, 2048))
		}
	}
	if n.store != nil {
		st := n.store.Stats()
		r.Cache = &wire.CacheStats{Objects: int64(st.Blobs), Bytes: st.Bytes}
		if n.cache != nil {
			cs := n.cache.Stats()
			r.Cache.Hits, r.Cache.Misses, r.Cache.UpstreamBytes = cs.Hits, cs.Misses, cs.UpstreamBytes
		}
		if n.mirror != nil { // what its syncs took from upstream, as in /metrics
			up, _ := n.mirror.Bytes()
			r.Cache.UpstreamBytes += up
		}
	}
	r.Agents, _ = n.events.Count()
	r.Outcomes = n.outcomeSummary()
	if subtree {
		r.Children = n.tree.Children()
	}
	return r
}

// generation is the catalog generation this node serves (the last it
// announced); 0 if none.
func (n *Node) generation() uint64 { return n.gen.Load() }

// tree is /v1/tree: this relay's group (first hand: itself, and its
// peers as gossip knows them) and the groups below it.
func (n *Node) treeView() admin.GroupView {
	self := n.selfReport(false)
	members := []wire.Report{self}
	if n.group != nil {
		for _, m := range n.group.Members() {
			if m.Name == n.cfg.Node {
				continue
			}
			members = append(members, wire.Report{Group: n.cfg.Group, Node: m.Name, Mode: m.Meta.Mode, URL: m.Meta.URL,
				Generation: m.Meta.Generation, Ready: m.State == "alive" && m.Meta.Ready, Problem: problem(m.State, m.Meta.Ready),
				MetadataVerified: timeOrZero(m.Meta.Verified), MetadataExpires: timeOrZero(m.Meta.Expires), Sent: n.clk.Now()})
		}
	}
	return hierarchy.View(n.cfg.Group, n.generation(), members, n.tree.Children(), n.clk.Now(), hierarchy.AgesFor(n.cfg.ReportInterval))
}

func problem(state string, ready bool) string {
	switch {
	case state != "alive":
		return state
	case !ready:
		return "not ready"
	}
	return ""
}

// publishRelays announces the group's relays when they change.
func (n *Node) publishRelays() {
	doc := n.relays()
	sort.Slice(doc.Relays, func(i, j int) bool { return doc.Relays[i].Name < doc.Relays[j].Name })
	if err := n.events.PublishJSON(wire.KindRelays, doc); err != nil {
		n.log.Error().Err(err).Msg("announce relays")
	}
}
