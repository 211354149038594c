package compliance

import (
	"cmp"
	"slices"
	"time"

	"github.com/relayd/relayd/pkg/wire"
)

// StaleAfter is the age past which a relay's report no longer vouches for
// its agents: they count as not reporting.
const StaleAfter = time.Hour

// Agent states, the values of the state label of the gauges.
const (
	StateOnTarget     = "on_target"
	StateBehind       = "behind"
	StateFailed       = "failed"
	StateNotReporting = "not_reporting"
)

// States lists the agent states in display order.
var States = []string{StateOnTarget, StateBehind, StateFailed, StateNotReporting}

// Report is the compliance of a subtree: per group, per ring, and in all.
type Report struct {
	// Generated is when Compute ran (its now).
	Generated time.Time `json:"generated"`
	// Plan is the rollout plan's name; empty without gates.
	Plan string `json:"plan,omitempty"`
	// Halted and Reason repeat the gates' halt.
	Halted bool   `json:"halted,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Newest is the newest generation: the gates' Newest, or without
	// gates the newest any relay of the subtree holds.
	Newest uint64 `json:"newest"`
	// Total sums every group.
	Total Counts `json:"total"`
	// Rings in the gates' order; none without gates.
	Rings []Ring `json:"rings,omitempty"`
	// Groups sorted by name.
	Groups []Group `json:"groups"`
}

// Counts is how many agents are in each state, and the age of the oldest
// report among them.
type Counts struct {
	Agents       int `json:"agents"`
	Reporting    int `json:"reporting"`
	OnTarget     int `json:"on_target"`
	Behind       int `json:"behind"`
	Failed       int `json:"failed"`
	NotReporting int `json:"not_reporting"`
	// OldestReport is the oldest newest-report of an agent; zero when
	// none reported. OldestAgeSeconds is its age at Generated.
	OldestReport     time.Time `json:"oldest_report,omitzero"`
	OldestAgeSeconds int64     `json:"oldest_age_seconds,omitempty"`
	// Reasons are the commonest failure reasons of the failed agents,
	// at most wire.MaxOutcomeReasons.
	Reasons []wire.Reason `json:"reasons,omitempty"`
}

// Of returns the count of one state (States); 0 for an unknown one.
func (c *Counts) Of(state string) int {
	switch state {
	case StateOnTarget:
		return c.OnTarget
	case StateBehind:
		return c.Behind
	case StateFailed:
		return c.Failed
	case StateNotReporting:
		return c.NotReporting
	}
	return 0
}

// Group is the compliance of the agents of one group's relays.
type Group struct {
	Name string `json:"name"`
	// Ring is the name of the group's ring; empty without gates.
	Ring string `json:"ring,omitempty"`
	// Target is the generation the group's agents should be on.
	Target uint64 `json:"target"`
	// Relays is how many relays of the group reported.
	Relays int `json:"relays"`
	Counts
}

// Ring is the compliance of one ring's groups.
type Ring struct {
	Name string `json:"name"`
	// Open is the ring's open generation (its target); 0 before it opens.
	Open uint64 `json:"open"`
	// Since is when Open last moved.
	Since time.Time `json:"since,omitzero"`
	// Groups is how many groups of the subtree are in the ring.
	Groups int `json:"groups"`
	Counts
}

// Compute sums up the agents of reports (the subtree below and including
// the caller: each report's children are walked) against the gates g
// (nil: no rollout, every group's target is the newest generation).
// It reads at most what the reports hold: wire.MaxReportNodes relays each
// with wire.MaxOutcomeGenerations generations.
func Compute(reports []wire.Report, g *wire.Gates, now time.Time) Report {
	if g != nil && len(g.Rings) == 0 {
		g = nil
	}
	out := Report{Generated: now}
	if g != nil {
		out.Plan, out.Halted, out.Reason, out.Newest = g.Plan, g.Halted, g.Reason, g.Newest.Version
	} else {
		walk(reports, func(r *wire.Report) { out.Newest = max(out.Newest, r.Generation) })
	}
	groups := map[string]*tally{}
	walk(reports, func(r *wire.Report) {
		t := groups[r.Group]
		if t == nil {
			t = newTally()
			t.g = Group{Name: r.Group, Target: out.Newest}
			if g != nil {
				ring := g.Rings[g.RingOf(r.Group)]
				t.g.Ring, t.g.Target = ring.Name, ring.Open.Version
			}
			groups[r.Group] = t
		}
		t.g.Relays++
		t.add(r, now)
	})
	var rings []*tally
	var ringGroups []int
	if g != nil {
		rings, ringGroups = make([]*tally, len(g.Rings)), make([]int, len(g.Rings))
		for i := range rings {
			rings[i] = newTally()
		}
	}
	total := newTally()
	out.Groups = make([]Group, 0, len(groups))
	for _, t := range groups {
		t.finish(now)
		out.Groups = append(out.Groups, t.g)
		total.merge(t)
		if g != nil {
			i := g.RingOf(t.g.Name)
			rings[i].merge(t)
			ringGroups[i]++
		}
	}
	slices.SortFunc(out.Groups, func(a, b Group) int { return cmp.Compare(a.Name, b.Name) })
	total.finish(now)
	out.Total = total.g.Counts
	if g != nil {
		out.Rings = make([]Ring, len(g.Rings))
		for i, r := range g.Rings {
			rings[i].finish(now)
			out.Rings[i] = Ring{Name: r.Name, Open: r.Open.Version, Since: r.Since, Groups: ringGroups[i], Counts: rings[i].g.Counts}
		}
	}
	return out
}

// walk calls f on every report of the trees, parents before children.
func walk(reports []wire.Report, f func(*wire.Report)) {
	for i := range reports {
		f(&reports[i])
		walk(reports[i].Children, f)
	}
}

// tally sums the counts of one group, ring or subtree.
type tally struct {
	g       Group
	reasons map[string]int
}

func newTally() *tally { return &tally{reasons: map[string]int{}} }

// add counts one relay's own agents against the tally's target.
func (t *tally) add(r *wire.Report, now time.Time) {
	o := r.Outcomes
	if o == nil {
		// A relay that takes no outcomes: its streaming agents are
		// known, and none reported.
		t.g.Agents += r.Agents
		t.g.NotReporting += r.Agents
		return
	}
	t.g.Agents += o.Agents
	if now.Sub(r.Sent) > StaleAfter {
		t.g.NotReporting += o.Agents
		return
	}
	counted := 0
	for _, gen := range o.Generations {
		current := gen.Generation >= t.g.Target
		counted += gen.Downloaded + gen.Installed + gen.Failed
		t.g.Behind += gen.Downloaded
		if current {
			t.g.OnTarget += gen.Installed
			t.g.Failed += gen.Failed
			for _, rs := range gen.Reasons {
				t.reasons[rs.Reason] += rs.Count
			}
		} else {
			t.g.Behind += gen.Installed + gen.Failed
		}
	}
	// A relay's counts come from its own table, but a hostile one may
	// claim more reports than agents: the agents it reported are known.
	if counted > o.Agents {
		t.g.Agents += counted - o.Agents
	}
	t.g.NotReporting += max(o.Agents-counted, 0)
	if !o.Oldest.IsZero() && counted > 0 && (t.g.OldestReport.IsZero() || o.Oldest.Before(t.g.OldestReport)) {
		t.g.OldestReport = o.Oldest
	}
}

// merge adds a group's tally to a ring's or the total.
func (t *tally) merge(o *tally) {
	c, d := &t.g.Counts, &o.g.Counts
	c.Agents += d.Agents
	c.OnTarget += d.OnTarget
	c.Behind += d.Behind
	c.Failed += d.Failed
	c.NotReporting += d.NotReporting
	if !d.OldestReport.IsZero() && (c.OldestReport.IsZero() || d.OldestReport.Before(c.OldestReport)) {
		c.OldestReport = d.OldestReport
	}
	for r, n := range o.reasons {
		t.reasons[r] += n
	}
}

// finish fills the derived figures: reporting, the oldest age, the top
// reasons.
func (t *tally) finish(now time.Time) {
	c := &t.g.Counts
	c.Reporting = c.Agents - c.NotReporting
	if !c.OldestReport.IsZero() {
		c.OldestAgeSeconds = max(int64(now.Sub(c.OldestReport)/time.Second), 0)
	}
	c.Reasons = topReasons(t.reasons)
}

// topReasons returns the wire.MaxOutcomeReasons commonest reasons, the
// commonest first (ties by text, so the order is stable).
func topReasons(m map[string]int) []wire.Reason {
	if len(m) == 0 {
		return nil
	}
	out := make([]wire.Reason, 0, len(m))
	for r, n := range m {
		out = append(out, wire.Reason{Reason: r, Count: n})
	}
	slices.SortFunc(out, func(a, b wire.Reason) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Reason, b.Reason)
	})
	return out[:min(len(out), wire.MaxOutcomeReasons)]
}
