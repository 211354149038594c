// The node's state as the admin API shows it: /v1/status, readiness, the
// mirror's sync endpoints and the loop-guard counters.
package node

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/admin"
	"github.com/relayd/relayd/pkg/mirror"
	"github.com/relayd/relayd/pkg/proxycache"
)

// syncer is the admin API's view of the mirror, nil without one.
func (n *Node) syncer() admin.Syncer {
	if n.mirror == nil {
		return nil
	}
	return mirrorSyncer{n.mirror}
}

type mirrorSyncer struct{ m *mirror.Mirror }

func (s mirrorSyncer) Trigger()                     { s.m.Trigger() }
func (s mirrorSyncer) Progress() admin.SyncProgress { return s.m.Progress() }

// ready is /-/readyz: a relay whose disk does not take writes is not
// ready, a mirror is ready once a generation is live, and a proxy with
// --root once it holds verified metadata (until then it refuses every
// object: catalog_unavailable). Expired metadata does not make a relay
// unready: it serves what it holds.
func (n *Node) ready() error {
	if err := n.diskReady(); err != nil {
		return err
	}
	switch {
	case n.cfg.Mode == ModeMirror:
		return n.mirror.Ready()
	case n.mirror != nil && n.mirror.Live() == nil:
		if last := n.mirror.Progress().LastError; last != "" {
			return fmt.Errorf("%w (last attempt: %s)", proxycache.ErrCatalogUnavailable, last)
		}
		return proxycache.ErrCatalogUnavailable
	}
	return nil
}

// LoopStatus counts loop-guard refusals.
type LoopStatus = admin.LoopStatus

// refusedLoop records a request this relay refused as a loop.
func (n *Node) refusedLoop(err error) {
	n.loopMu.Lock()
	n.loops.Refused++
	n.loops.LastRefused = err.Error()
	n.loopMu.Unlock()
	n.lim.Event(&n.log, zerolog.ErrorLevel, "loop").Err(err).Msg("refused a request that loops: check the upstream configuration")
}

// claimedLoop records a request refused as a loop that did not prove it
// comes from a relay: counted, logged at info at most once an interval,
// no alert (anyone can send X-Relay-Path).
func (n *Node) claimedLoop(err error) {
	n.loopMu.Lock()
	n.loops.Claimed++
	n.loops.LastClaimed = err.Error()
	n.loopMu.Unlock()
	n.lim.Event(&n.log, zerolog.InfoLevel, "claimed loop").Err(err).
		Msg("refused a request whose X-Relay-Path already holds this group (unauthenticated: a loop, or anyone's header)")
}

// status is /v1/status.
func (n *Node) status() admin.Status {
	s := admin.Status{Node: n.cfg.Node, Group: n.cfg.Group, Mode: n.cfg.Mode, Version: Version,
		Uptime: n.clk.Now().Sub(n.start).Round(time.Second).String(), Upstream: n.cfg.Upstream.Upstreams,
		Fallback: n.cfg.Upstream.Fallback, Serving: n.content.Serving(), Generation: n.generation()}
	s.Agents, s.Children = n.events.Count()
	if n.store != nil {
		st := n.store.Stats()
		s.Store = &st
	}
	if n.cache != nil {
		cs := n.cache.Stats()
		s.Cache = &cs
	}
	if n.mirror != nil {
		p := n.mirror.Progress()
		s.Sync = &p
	}
	s.Metadata = n.metadataStatus()
	if n.up != nil {
		s.Parents = n.up.Parents()
		ts := n.up.Stats()
		s.Transfers = &ts
		s.Window = n.up.WindowStatus()
		wan := n.up.Traffic()
		s.WAN = &wan
	}
	n.loopMu.Lock()
	l := n.loops
	n.loopMu.Unlock()
	if n.up != nil {
		l.RefusedUpstream, l.LastUpstream = n.up.Loops()
	}
	if l.Refused > 0 || l.RefusedUpstream > 0 || l.Claimed > 0 {
		s.Loops = &l
	}
	s.Budget = n.budgetStatus()
	s.Conflicts = n.conflicts()
	s.Warnings = n.warnings
	return s
}

// metadataStatus is /v1/status's metadata: nil for a node that serves
// no verified metadata.
func (n *Node) metadataStatus() *admin.MetadataStatus {
	verified, expires := n.freshness()
	if n.mirror == nil && expires.IsZero() {
		return nil
	}
	m := &admin.MetadataStatus{Verified: verified, Expires: expires}
	if !expires.IsZero() && !n.clk.Now().Before(expires) {
		m.ExpiredSince = expires.UTC().Format(time.RFC3339)
	}
	if n.mirror != nil {
		m.UpdateFailures = n.mirror.Failures()
	}
	return m
}
