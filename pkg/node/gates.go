// The rollout gates at a relay (issue 15): a relay whose trusted root
// lists a rollout role fetches rollout.json from its parents after each
// timestamp poll and on each KindGates event, verifies it with its TUF
// client (the rollout role's threshold of the root it trusts, expiry,
// never older than the held gates), serves the newest accepted at
// /-/tuf/rollout.json and announces it down (KindGates). Forged, replayed
// or expired gates are refused, counted and said once each; the held
// ones stay. A relay cannot open a gate or move anyone into another ring:
// it only passes on what the rollout key signed, and agents verify it.
//
// The mirror keeps the objects of every generation a ring is open at
// (mirror.Config.Keep), served at their consistent names (version).
package node

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/relayd/relayd/pkg/admindoc"
	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/events"
	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/server"
	"github.com/relayd/relayd/pkg/tufclient"
	"github.com/relayd/relayd/pkg/wire"
)

// Why gates were refused (relayd_rollout_gates_refused_total{reason}).
const (
	gatesForged   = "forged"   // not signed by the rollout role's threshold
	gatesReplayed = "replayed" // older than the held gates, or same version, other bytes
	gatesExpired  = "expired"  // past their expiry
	gatesInvalid  = "invalid"  // too large, malformed, against the gates' own rules
)

var gatesReasons = []string{gatesForged, gatesReplayed, gatesExpired, gatesInvalid}

// gatesState is the node's part in following the gates.
type gatesState struct {
	kick    chan struct{} // a poll or an event asks for a look
	refused *prometheus.CounterVec
	mu      sync.Mutex
	logged  map[string]digest.Digest // reason → the last refused file said in the log
}

// openGates prepares a verifying relay to follow the gates.
func (n *Node) openGates() {
	n.gates.kick = make(chan struct{}, 1)
	n.gates.logged = map[string]digest.Digest{}
	n.gates.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "relayd", Name: "rollout_gates_refused_total",
		Help: "Rollout gates (rollout.json) from the parents this relay refused, by reason (forged, replayed, expired, invalid)."}, []string{"reason"})
	for _, r := range gatesReasons {
		n.gates.refused.WithLabelValues(r)
	}
	n.reg.MustRegister(n.gates.refused)
	n.gatesHeld = func() (*wire.Gates, admindoc.SignedGates, bool) {
		g, info, ok := n.mirror.Gates()
		return g, admindoc.SignedGates{Version: info.Version, Expires: info.Expires}, ok && g != nil
	}
}

// kickGates asks for a look at the parents' gates (after a timestamp
// poll, on a KindGates event).
func (n *Node) kickGates() {
	if n.gates.kick == nil {
		return
	}
	select {
	case n.gates.kick <- struct{}{}:
	default: // one already pending
	}
}

// followGates looks at the parents' gates whenever kicked, until ctx
// ends; the gates held from an earlier run are announced first.
func (n *Node) followGates(ctx context.Context) error {
	if _, info, _ := n.mirror.Gates(); info.Version > 0 {
		n.announceGates(info.Version)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-n.gates.kick:
			n.updateGates(ctx)
		}
	}
}

// updateGates fetches the parents' gates and holds them when they verify
// and are newer.
func (n *Node) updateGates(ctx context.Context) {
	if !n.mirror.HasRolloutRole() {
		return
	}
	raw, err := n.mirror.FetchGates(ctx)
	n.log.Debug().Err(err).Int("bytes", len(raw)).Msg("rollout gates fetched")
	switch {
	case errors.Is(err, tufclient.ErrNotFound):
		n.log.Debug().Err(err).Msg("the parents serve no rollout gates (no rollout plan yet)")
		return
	case errors.Is(err, catalog.ErrTooLarge):
		n.refuseGates(gatesInvalid, err, nil)
		return
	case err != nil:
		n.log.Debug().Err(err).Msg("rollout gates not fetched")
		return
	}
	_, before, _ := n.mirror.Gates()
	g, info, err := n.mirror.VerifyGates(raw)
	if err != nil {
		n.refuseGates(gatesReason(err), err, raw)
		return
	}
	if info.Version <= before.Version {
		return
	}
	n.log.Info().Int64("version", info.Version).Str("plan", g.Plan).Bool("halted", g.Halted).Any("open", openVersions(g)).
		Time("expires", info.Expires).Msg("rollout gates accepted")
	n.announceGates(info.Version)
	n.mirror.Release() // a ring moved on: the generations no ring is at go
	for _, r := range g.Rings {
		if err := n.mirror.HoldPinned(ctx, r.Open); err != nil {
			n.log.Warn().Err(err).Str("ring", r.Name).Msg("the generation this ring is open at could not be verified; its versions are not served by consistent name here")
		}
	}
}

// gatesReason classifies a refusal of VerifyGates.
func gatesReason(err error) string {
	switch {
	case errors.Is(err, tufclient.ErrGatesReplayed):
		return gatesReplayed
	case errors.Is(err, tufclient.ErrExpired):
		return gatesExpired
	case errors.Is(err, tufclient.ErrGatesForged):
		return gatesForged
	}
	return gatesInvalid
}

// refuseGates counts a refusal, and says it in the log once per distinct
// file and reason (a parent serving the same bad file is polled often).
func (n *Node) refuseGates(reason string, err error, raw []byte) {
	n.gates.refused.WithLabelValues(reason).Inc()
	d := digest.FromBytes(raw)
	n.gates.mu.Lock()
	seen := n.gates.logged[reason] == d
	n.gates.logged[reason] = d
	n.gates.mu.Unlock()
	if !seen {
		n.log.Warn().Err(err).Str("reason", reason).Msg("rollout gates from the parents refused; the held gates stay")
	}
}

// announceGates tells children and agents of new gates.
func (n *Node) announceGates(version int64) {
	if err := n.events.PublishJSON(wire.KindGates, wire.GatesEvent{Version: version}); err != nil {
		n.log.Error().Err(err).Msg("announce gates")
	}
}

// openVersions lists the generation each ring is open at.
func openVersions(g *wire.Gates) []uint64 {
	out := make([]uint64, len(g.Rings))
	for i, r := range g.Rings {
		out[i] = r.Open.Version
	}
	return out
}

// keepGenerations is the mirror's Keep: the generations the held gates
// open a ring at and, while gates are held, the live one (new gates
// holding a ring at it may not have arrived yet when the next generation
// goes live; the next accepted gates release it).
func (n *Node) keepGenerations() []uint64 {
	g, _, _ := n.mirror.Gates()
	if g == nil {
		return nil
	}
	keep := openVersions(g)
	if l := n.mirror.Live(); l != nil {
		keep = append(keep, l.Catalog.Generation)
	}
	return keep
}

// gatesFile is /-/tuf/rollout.json of a verifying relay: the held gates
// as they were signed (expired ones too: children refuse those
// themselves and keep theirs); 404 while none are held.
func (n *Node) gatesFile() (*object.Object, error) {
	_, info, _ := n.mirror.Gates()
	if len(info.Raw) == 0 {
		return nil, &server.Error{Status: http.StatusNotFound, Code: "not_found", Msg: "no rollout gates held: the tree has no rollout plan, or none verified yet"}
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	return &object.Object{Key: strings.TrimPrefix(wire.TUFPath(wire.GatesName), "/"), Size: int64(len(info.Raw)),
		ETag: digest.FromBytes(info.Raw).ETag(), Header: h, Body: object.BytesBody(info.Raw)}, nil
}

// version serves a consistent target name (dir/<sha256>.name) of the
// live or a held generation: the mirror's copy (fetched up by that name
// when missing), or the blob the store holds for that digest (a proxy
// that cached the path when that version was live). ok is false when
// neither applies: a proxy's cache then fills it up by that name (the
// mirror lists it to the cache, see mirror.Expect).
func (n *Node) version(ctx context.Context, key string) (*object.Object, bool, error) {
	if n.mirror == nil {
		return nil, false, nil
	}
	if obj, ok, err := n.mirror.OpenVersion(ctx, key); ok {
		return obj, true, err
	}
	o, _, ok := n.mirror.Version(key)
	if !ok || !n.store.Has(o.Digest) {
		return nil, false, nil
	}
	r, err := n.store.OpenBlob(o.Digest)
	if err != nil {
		return nil, false, nil // evicted since: the cache fills it
	}
	return &object.Object{Key: key, Size: r.Size, ETag: o.Digest.ETag(), LastModified: n.mirror.Live().Catalog.Published,
		Header: http.Header{"Content-Type": {"application/octet-stream"}}, Cache: object.Hit, Body: r.Body(n.cfg.Cache.Sendfile)}, true, nil
}

// parentGates is a KindGates event from the parent: a verifying relay
// looks at the parents' gates; a plain proxy, which passes rollout.json
// through, passes the news on (its agents verify).
func (n *Node) parentGates(ev events.Event) {
	if n.mirror != nil {
		n.kickGates()
		return
	}
	n.events.Publish(wire.KindGates, ev.Data)
}

// runFollowers starts, on a verifying relay, what follows the tree's
// metadata: the mirror's syncs, the gates and the pre-positioning.
func (n *Node) runFollowers(ctx context.Context, g *errgroup.Group) {
	if n.mirror == nil {
		return
	}
	g.Go(func() error { return n.mirror.Run(ctx) })
	g.Go(func() error { return n.followGates(ctx) })
	if n.prepos != nil {
		g.Go(func() error { return n.preposition(ctx) })
	}
}
