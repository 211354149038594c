package compliance

import (
	"cmp"
	"slices"
	"time"

	"github.com/relayd/relayd/pkg/admindoc"
	"github.com/relayd/relayd/pkg/outcome"
	"github.com/relayd/relayd/pkg/wire"
)

// StaleAfter is the age past which a relay's report no longer vouches for
// its agents: they count as not reporting.
const StaleAfter = time.Hour

// Agent states, the values of the state label of the gauges.
const (
	StateOnTarget     = admindoc.StateOnTarget
	StateBehind       = admindoc.StateBehind
	StateFailed       = admindoc.StateFailed
	StateNotReporting = admindoc.StateNotReporting
)

// States lists the agent states in display order.
var States = admindoc.ComplianceStates

// The documents of GET /v1/compliance, declared in pkg/admindoc.
type (
	// Report is the compliance of a subtree: per group, per ring, and
	// in all.
	Report = admindoc.Compliance
	// Counts is how many agents are in each state.
	Counts = admindoc.ComplianceCounts
	// Group is the compliance of the agents of one group's relays.
	Group = admindoc.ComplianceGroup
	// Ring is the compliance of one ring's groups.
	Ring = admindoc.ComplianceRing
)

// Compute sums up the agents of reports (the subtree below and including
// the caller: each report's children are walked) against the gates g
// (nil: no rollout, every group's target is the newest generation), a
// relay whose report is older than StaleAfter counting as not reporting.
// A relay whose report reached the caller by several paths (a child of
// two parents) counts once, by its newest report. It reads at most what
// the reports hold: wire.MaxReportNodes relays each with
// wire.MaxOutcomeGenerations generations.
func Compute(reports []wire.Report, g *wire.Gates, now time.Time) Report {
	return ComputeStale(reports, g, now, StaleAfter)
}

// ComputeStale is Compute with the age past which a relay's report no
// longer vouches for its agents: a node passes the age at which its tree
// shows a relay gone (three report intervals).
func ComputeStale(reports []wire.Report, g *wire.Gates, now time.Time, staleAfter time.Duration) Report {
	if g != nil && len(g.Rings) == 0 {
		g = nil
	}
	relays := newest(reports)
	out := Report{Generated: now}
	if g != nil {
		out.Plan, out.Halted, out.Reason, out.Newest = g.Plan, g.Halted, g.Reason, g.Newest.Version
	} else {
		for _, r := range relays {
			out.Newest = max(out.Newest, r.Generation)
		}
	}
	groups := map[string]*tally{}
	for _, r := range relays {
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
		t.add(r, now.Sub(r.Sent) > staleAfter)
	}
	fold(&out, groups, g, now)
	return out
}

// fold fills out's groups, rings and total from the groups' tallies.
func fold(out *Report, groups map[string]*tally, g *wire.Gates, now time.Time) {
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
	out.Total = total.g.ComplianceCounts
	if g != nil {
		out.Rings = make([]Ring, len(g.Rings))
		for i, r := range g.Rings {
			rings[i].finish(now)
			out.Rings[i] = Ring{Name: r.Name, Open: r.Open.Version, Since: r.Since, Groups: ringGroups[i], ComplianceCounts: rings[i].g.ComplianceCounts}
		}
	}
}

// newest returns every relay of the trees once, by its newest report
// (the Sent of each relay's own clock, as the tree view does).
func newest(reports []wire.Report) []*wire.Report {
	type key struct{ group, node string }
	by := map[key]*wire.Report{}
	var order []key
	var walk func([]wire.Report)
	walk = func(rs []wire.Report) {
		for i := range rs {
			r := &rs[i]
			k := key{r.Group, r.Node}
			if old, ok := by[k]; !ok {
				order = append(order, k)
				by[k] = r
			} else if r.Sent.After(old.Sent) {
				by[k] = r
			}
			walk(r.Children)
		}
	}
	walk(reports)
	out := make([]*wire.Report, len(order))
	for i, k := range order {
		out[i] = by[k]
	}
	return out
}

// tally sums the counts of one group, ring or subtree.
type tally struct {
	g       Group
	reasons map[string]int
}

func newTally() *tally { return &tally{reasons: map[string]int{}} }

// add counts one relay's own agents against the tally's target; those
// of a stale report as not reporting.
func (t *tally) add(r *wire.Report, stale bool) {
	o := r.Outcomes
	if o == nil {
		// A relay that takes no outcomes: its streaming agents are
		// known, and none reported.
		t.g.Agents += r.Agents
		t.g.NotReporting += r.Agents
		return
	}
	t.g.Agents += o.Agents
	if stale {
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
	c, d := &t.g.ComplianceCounts, &o.g.ComplianceCounts
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
	c := &t.g.ComplianceCounts
	c.Reporting = c.Agents - c.NotReporting
	if !c.OldestReport.IsZero() {
		c.OldestAgeSeconds = max(int64(now.Sub(c.OldestReport)/time.Second), 0)
	}
	c.Reasons = outcome.TopReasons(t.reasons)
}
