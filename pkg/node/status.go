// The node's state as the admin API shows it: /v1/status, readiness, the
// mirror's sync endpoints and the loop-guard counters.
package node

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/admin"
	"github.com/relayd/relayd/pkg/hierarchy"
	"github.com/relayd/relayd/pkg/mirror"
	"github.com/relayd/relayd/pkg/proxycache"
	"github.com/relayd/relayd/pkg/store"
)

// syncer is the admin API's view of the mirror, nil without one.
func (n *Node) syncer() admin.Syncer {
	if n.mirror == nil {
		return nil
	}
	return mirrorSyncer{n.mirror}
}

type mirrorSyncer struct{ m *mirror.Mirror }

func (s mirrorSyncer) Trigger()      { s.m.Trigger() }
func (s mirrorSyncer) Progress() any { return s.m.Progress() }

// ready is /-/readyz: a relay whose disk does not take writes is not
// ready, a mirror is ready once a generation is live, and a proxy with
// --pubkey once it holds a verified catalog (until then it refuses every
// object: catalog_unavailable).
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

// Status is the /v1/status document.
type Status struct {
	Node    string `json:"node"`
	Group   string `json:"group"`
	Mode    string `json:"mode"`
	Version string `json:"version"`
	Uptime  string `json:"uptime"`
	// Upstream is the configured upstreams; Parents the parent relays in
	// use (learned from the upstream's /-/relays); Transfers what it took
	// to keep transfers going.
	Upstream  []string         `json:"upstream,omitempty"`
	Fallback  []string         `json:"fallback,omitempty"`
	Parents   []string         `json:"parents,omitempty"`
	Transfers *hierarchy.Stats `json:"transfers,omitempty"`
	// Serving is how many object responses are in progress; Agents and
	// Children how many agents and child relays hold an event stream.
	Serving    int64             `json:"serving"`
	Agents     int               `json:"agents"`
	Children   int               `json:"children"`
	Generation uint64            `json:"generation"`
	Store      *store.Stats      `json:"store,omitempty"`
	Cache      *proxycache.Stats `json:"cache,omitempty"`
	Sync       *mirror.Progress  `json:"sync,omitempty"`
	// Loops reports misconfigured cycles: requests refused here, and
	// upstream requests refused by a parent, with the last message.
	Loops *LoopStatus `json:"loops,omitempty"`
	// Budget is the connection budget and what it refused.
	Budget *BudgetStatus `json:"budget,omitempty"`
	// Conflicts lists identities two relays claim (see Conflict).
	Conflicts []Conflict `json:"conflicts,omitempty"`
}

// LoopStatus counts loop-guard refusals.
type LoopStatus struct {
	Refused         int64  `json:"refused"`
	LastRefused     string `json:"last_refused,omitempty"`
	RefusedUpstream int64  `json:"refused_upstream"`
	LastUpstream    string `json:"last_upstream,omitempty"`
}

// refusedLoop records a request this relay refused as a loop.
func (n *Node) refusedLoop(err error) {
	n.loopMu.Lock()
	n.loops.Refused++
	n.loops.LastRefused = err.Error()
	n.loopMu.Unlock()
	n.lim.Event(&n.log, zerolog.ErrorLevel, "loop").Err(err).Msg("refused a request that loops: check the upstream configuration")
}

func (n *Node) status() any {
	s := Status{Node: n.cfg.Node, Group: n.cfg.Group, Mode: n.cfg.Mode, Version: Version,
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
	if n.up != nil {
		s.Parents = n.up.Parents()
		ts := n.up.Stats()
		s.Transfers = &ts
	}
	n.loopMu.Lock()
	l := n.loops
	n.loopMu.Unlock()
	if n.up != nil {
		l.RefusedUpstream, l.LastUpstream = n.up.Loops()
	}
	if l.Refused > 0 || l.RefusedUpstream > 0 {
		s.Loops = &l
	}
	s.Budget = n.budgetStatus()
	s.Conflicts = n.conflicts()
	return s
}
