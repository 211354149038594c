// The origin's staged rollout (issue 15): the engine of pkg/rollout fed
// with the tree's outcome reports, its gates signed with the online
// rollout key into TREE/-/tuf/rollout.json (served like the other
// metadata), announced on /-/events, re-signed at half their lifetime;
// and /v1/rollout on every node.
package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"

	"github.com/relayd/relayd/pkg/admin"
	"github.com/relayd/relayd/pkg/admindoc"
	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/compliance"
	"github.com/relayd/relayd/pkg/httpx"
	"github.com/relayd/relayd/pkg/rollout"
	"github.com/relayd/relayd/pkg/tufrepo"
	"github.com/relayd/relayd/pkg/wire"
)

// rolloutTick is how often the origin looks for a new generation and
// weighs the rings' gates.
const rolloutTick = time.Second

// rolloutDB is the engine's state file under the data directory.
const rolloutDB = "rollout.db"

// rolloutMetrics are the series of the origin's rollout (operations.md
// lists them; an origin with a plan exports them).
var rolloutMetrics = []string{"relayd_rollout_ring_generation", "relayd_rollout_halted", "relayd_rollout_decisions_total"}

// rolloutPart is the origin's rollout: the engine, its state file and the
// online rollout key.
type rolloutPart struct {
	eng    *rollout.Engine
	db     *bolt.DB
	key    *tufrepo.KeyRing
	tree   string
	expiry time.Duration
	clk    clock.Timers
	log    zerolog.Logger
	// decisions counts the engine's decisions by kind.
	decisions *prometheus.CounterVec

	mu sync.Mutex
	// started: the tree's generation at start was given to the engine.
	started bool
	// signed is the last rollout.json signed, at signedAt; dirty: the
	// gates changed since (or the signing failed).
	signed   admindoc.SignedGates
	signedAt time.Time
	dirty    bool
	lastErr  string // the last error logged (each is logged once), for the status
}

// openSigners opens what an origin signs with while it runs: the
// timestamp re-sign and the rollout's gates.
func (n *Node) openSigners(cfg Config, clk clock.Clock) error {
	if err := n.openResigner(cfg, clk); err != nil {
		return err
	}
	return n.openRollout(cfg, clk)
}

// openRollout loads the plan, the rollout key and the engine's state
// (origin mode with rollout-plan).
func (n *Node) openRollout(cfg Config, clk clock.Clock) error {
	if cfg.RolloutPlan == "" {
		return nil
	}
	plan, err := rollout.LoadPlan(cfg.RolloutPlan)
	if err != nil {
		return fmt.Errorf("rollout-plan: %w", err)
	}
	key, err := tufrepo.LoadKeyRing([]string{cfg.RolloutKeyFile}, nil)
	if err != nil {
		return fmt.Errorf("rollout-key: %w", err)
	}
	timers, ok := clk.(clock.Timers)
	if !ok {
		return errors.New("rollout-plan: the node's clock cannot schedule")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data-dir: %w", err)
	}
	db, err := bolt.Open(filepath.Join(cfg.DataDir, rolloutDB), 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return fmt.Errorf("rollout state %s: %w (another relayd on this data-dir?)", filepath.Join(cfg.DataDir, rolloutDB), err)
	}
	eng, ch, err := rollout.Open(plan, db)
	if err != nil {
		_ = db.Close()
		return err
	}
	r := &rolloutPart{eng: eng, db: db, key: key, tree: cfg.Root, expiry: cfg.RolloutExpiry, clk: timers,
		log: n.log.With().Str("component", "rollout").Logger(), dirty: true,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "relayd_rollout_decisions_total",
			Help: "Decisions of the origin's rollout engine, by kind (adopt, generation, open, promote, halt, manual_halt, resume, plan)."}, []string{"decision"})}
	for _, k := range []string{rollout.DecisionAdopt, rollout.DecisionGeneration, rollout.DecisionOpen, rollout.DecisionPromote,
		rollout.DecisionHalt, rollout.DecisionManualHalt, rollout.DecisionResume, rollout.DecisionPlan} {
		r.decisions.WithLabelValues(k)
	}
	n.rollout = r
	n.reg.MustRegister(r.decisions, (*rolloutCollector)(r))
	r.log.Info().Str("plan", plan.Name).Int("rings", len(plan.Rings)).Msg("rollout plan loaded")
	n.rolloutApply(ch, nil)
	return nil
}

// closeRollout closes the engine's state file.
func (n *Node) closeRollout() {
	if n.rollout != nil {
		_ = n.rollout.db.Close()
	}
}

// runRollout drives the engine until ctx ends.
func (n *Node) runRollout(ctx context.Context) {
	for {
		n.rolloutStep()
		if !clock.Sleep(ctx, n.rollout.clk, rolloutTick) {
			return
		}
	}
}

// rolloutStep gives the engine a new generation of the tree, weighs the
// gates, and signs the gates when they changed or half their lifetime
// has passed.
func (n *Node) rolloutStep() {
	r := n.rollout
	now := r.clk.Now()
	if ts, err := n.origin.ReadTimestamp(); err == nil {
		r.mu.Lock()
		started := r.started
		r.mu.Unlock()
		if !started || ts.Generation > r.eng.State().Newest.Version {
			n.rolloutGeneration(now, ts.Generation, started)
		}
	}
	if r.eng.State().Newest.Version == 0 {
		return // nothing published yet: nothing to gate or sign
	}
	ch, err := r.eng.Tick(now, n.rolloutInputs(now))
	n.rolloutApply(ch, err)
	r.mu.Lock()
	due := r.dirty || !now.Before(r.signedAt.Add(r.expiry/2))
	r.mu.Unlock()
	if due {
		n.signGates(now)
	}
}

// rolloutGeneration hands generation gen of the tree to the engine.
func (n *Node) rolloutGeneration(now time.Time, gen uint64, started bool) {
	r := n.rollout
	pin, err := tufrepo.PinOf(r.tree, int64(gen))
	if err != nil {
		r.logOnce(err, "generation %d cannot be pinned; its rings wait", gen)
		return
	}
	var ch rollout.Change
	if started {
		ch, err = r.eng.NewGeneration(now, pin)
	} else {
		ch, err = r.eng.Started(now, pin)
		r.mu.Lock()
		r.started = err == nil
		r.mu.Unlock()
	}
	n.rolloutApply(ch, err)
}

// rolloutInputs are the rings' outcome counts: pkg/compliance over the
// whole tree's reports (the origin's own and its subtree's) against the
// gates in force.
func (n *Node) rolloutInputs(now time.Time) rollout.Inputs {
	g := n.rollout.eng.Gates()
	rep := compliance.Compute([]wire.Report{n.selfReport(true)}, &g, now)
	return rollout.InputsFunc(func(ring int, _ uint64) rollout.Counts {
		// Compute counts each ring against the generation it is open
		// at, which is the one the engine asks about.
		if ring >= len(rep.Rings) {
			return rollout.Counts{}
		}
		c := rep.Rings[ring].ComplianceCounts
		out := rollout.Counts{Reporting: c.Reporting, Installed: c.OnTarget, Failed: c.Failed}
		if len(c.Reasons) > 0 {
			out.TopReason = c.Reasons[0].Reason
		}
		return out
	})
}

// rolloutApply logs and counts the engine's decisions; changed gates are
// signed at once.
func (n *Node) rolloutApply(ch rollout.Change, err error) {
	r := n.rollout
	if err != nil {
		r.logOnce(err, "rollout step failed")
		return
	}
	for _, d := range ch.Decisions {
		r.decisions.WithLabelValues(d.Kind).Inc()
		ev := r.log.Info()
		if d.Kind == rollout.DecisionHalt || d.Kind == rollout.DecisionManualHalt {
			ev = r.log.Warn()
		}
		ev.Str("decision", d.Kind).Str("ring", d.Ring).Uint64("generation", d.Generation).Str("why", d.Why).Msg("rollout decision")
	}
	if ch.Gates != nil {
		r.mu.Lock()
		r.dirty = true
		r.mu.Unlock()
		if ch.Gates.Newest.Version > 0 {
			n.signGates(r.clk.Now())
		}
	}
}

// signGates signs the engine's gates into TREE/-/tuf/rollout.json and
// announces them.
func (n *Node) signGates(now time.Time) {
	r := n.rollout
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.eng.Gates()
	raw, err := tufrepo.SignGates(r.tree, r.key, g, r.expiry, now)
	if err != nil {
		r.dirty = true
		r.logOnceLocked(err, "signing the rollout gates failed; children keep the gates they hold until they expire")
		return
	}
	var doc struct {
		Signed struct {
			Version int64     `json:"version"`
			Expires time.Time `json:"expires"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		r.logOnceLocked(err, "the signed gates do not parse")
		return
	}
	r.signed = admindoc.SignedGates{Version: doc.Signed.Version, Expires: doc.Signed.Expires}
	r.signedAt, r.dirty, r.lastErr = now, false, ""
	if err := n.events.PublishJSON(wire.KindGates, wire.GatesEvent{Version: r.signed.Version}); err != nil {
		r.log.Error().Err(err).Msg("announce gates")
	}
	r.log.Info().Int64("version", r.signed.Version).Time("expires", r.signed.Expires).Uint64("newest", g.Newest.Version).
		Bool("halted", g.Halted).Msg("rollout gates signed")
}

// logOnce logs err unless it is the error logged last.
func (r *rolloutPart) logOnce(err error, format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logOnceLocked(err, format, a...)
}

func (r *rolloutPart) logOnceLocked(err error, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	if msg+": "+err.Error() == r.lastErr {
		return
	}
	r.lastErr = msg + ": " + err.Error()
	r.log.Error().Err(err).Msg(msg)
}

// rolloutCollector exports the gates in force: each ring's open
// generation, and whether the rollout is halted.
type rolloutCollector rolloutPart

var (
	mRingGeneration = prometheus.NewDesc("relayd_rollout_ring_generation", "Generation each ring of the rollout plan may install (0: none yet).", []string{"ring"}, nil)
	mRolloutHalted  = prometheus.NewDesc("relayd_rollout_halted", "1 when the rollout is halted (nothing further opens until resumed).", nil, nil)
)

// Describe sends the descriptors.
func (c *rolloutCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- mRingGeneration
	ch <- mRolloutHalted
}

// Collect reads the engine's gates.
func (c *rolloutCollector) Collect(ch chan<- prometheus.Metric) {
	g := c.eng.Gates()
	for _, r := range g.Rings {
		ch <- prometheus.MustNewConstMetric(mRingGeneration, prometheus.GaugeValue, float64(r.Open.Version), r.Name)
	}
	halted := 0.0
	if g.Halted {
		halted = 1
	}
	ch <- prometheus.MustNewConstMetric(mRolloutHalted, prometheus.GaugeValue, halted)
}

// nodeRollout is /v1/rollout as the node serves it.
type nodeRollout Node

var _ admin.Rollout = (*nodeRollout)(nil)

var errNotOrigin = &httpx.Error{Status: http.StatusConflict, Code: "not_origin",
	Msg: "only the origin with a rollout plan (rollout-plan) changes the rollout; this node follows the gates it is sent"}

// RolloutStatus is the origin's plan and gates, or a relay's held gates.
func (nr *nodeRollout) RolloutStatus() (admin.RolloutStatus, error) {
	n := (*Node)(nr)
	r := n.rollout
	if r == nil {
		return n.relayRollout(), nil
	}
	st := r.eng.Status(n.clk.Now())
	r.mu.Lock()
	st.Signed, st.Problem = r.signed, r.lastErr
	r.mu.Unlock()
	return st, nil
}

// Promote opens ring ("": the next ring) by hand.
func (nr *nodeRollout) Promote(ring string) (admin.RolloutStatus, error) {
	return nr.act(func(r *rolloutPart) (rollout.Change, error) { return r.eng.Promote(r.clk.Now(), ring) })
}

// Halt halts the rollout by hand.
func (nr *nodeRollout) Halt(reason string) (admin.RolloutStatus, error) {
	return nr.act(func(r *rolloutPart) (rollout.Change, error) { return r.eng.Halt(reason) })
}

// Resume lifts a halt.
func (nr *nodeRollout) Resume() (admin.RolloutStatus, error) {
	n := (*Node)(nr)
	return nr.act(func(r *rolloutPart) (rollout.Change, error) { return r.eng.Resume(n.rolloutInputs(r.clk.Now())) })
}

// act runs a manual action on the origin's engine, signs and answers the
// new status.
func (nr *nodeRollout) act(f func(r *rolloutPart) (rollout.Change, error)) (admin.RolloutStatus, error) {
	n := (*Node)(nr)
	r := n.rollout
	if r == nil {
		return admin.RolloutStatus{}, errNotOrigin
	}
	ch, err := f(r)
	switch {
	case errors.Is(err, rollout.ErrHalted):
		return admin.RolloutStatus{}, &httpx.Error{Status: http.StatusConflict, Code: "halted", Msg: "the rollout is halted (" + r.eng.State().Reason + "): resume it first", Err: err}
	case errors.Is(err, rollout.ErrUnknownRing):
		return admin.RolloutStatus{}, &httpx.Error{Status: http.StatusNotFound, Code: "unknown_ring", Msg: "the plan has no such ring", Err: err}
	case errors.Is(err, rollout.ErrNoGeneration):
		return admin.RolloutStatus{}, &httpx.Error{Status: http.StatusConflict, Code: "no_generation", Msg: "nothing is published yet", Err: err}
	case errors.Is(err, rollout.ErrBadReason):
		return admin.RolloutStatus{}, &httpx.Error{Status: http.StatusBadRequest, Code: "bad_reason", Msg: err.Error()}
	case err != nil:
		return admin.RolloutStatus{}, err
	}
	n.rolloutApply(ch, nil)
	return nr.RolloutStatus()
}

// relayRollout is a relay's /v1/rollout: the gates it follows.
func (n *Node) relayRollout() admin.RolloutStatus {
	st := admin.RolloutStatus{ReadOnly: true}
	if n.gatesHeld == nil {
		return st
	}
	if g, signed, ok := n.gatesHeld(); ok {
		st.Gates, st.Signed, st.Halted, st.Reason = g, signed, g.Halted, g.Reason
	}
	return st
}
