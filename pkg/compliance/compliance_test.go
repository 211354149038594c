package compliance

import (
	"reflect"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/wire"
)

var now = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func pin(v uint64) wire.Pin {
	if v == 0 {
		return wire.Pin{}
	}
	return wire.Pin{Version: v, Length: 100, SHA256: "0000000000000000000000000000000000000000000000000000000000000000"}
}

// tree: hq (no agents) → branch-a (canary, ring open at 8), branch-b
// (early, open at 7), two relays of eu-1 (broad by "*", open at 7).
func tree() []wire.Report {
	fresh := now.Add(-time.Minute)
	return []wire.Report{{Group: "hq", Node: "hq-1", Generation: 8, Sent: fresh, Outcomes: &wire.Outcomes{}, Children: []wire.Report{
		{Group: "branch-a", Node: "a-1", Generation: 8, Sent: fresh, Outcomes: &wire.Outcomes{Agents: 11, Oldest: now.Add(-30 * time.Minute),
			Generations: []wire.GenOutcome{
				{Generation: 8, Installed: 5, Downloaded: 1, Failed: 2, Reasons: []wire.Reason{{Reason: "exit 1: disk full", Count: 2}}},
				{Generation: 7, Installed: 1, Failed: 1, Reasons: []wire.Reason{{Reason: "old", Count: 1}}},
			}}},
		{Group: "branch-b", Node: "b-1", Generation: 8, Sent: fresh, Outcomes: &wire.Outcomes{Agents: 4, Oldest: now.Add(-2 * time.Hour),
			Generations: []wire.GenOutcome{{Generation: 7, Installed: 3}}}},
		{Group: "eu-1", Node: "e-1", Generation: 8, Sent: fresh, Agents: 3, Outcomes: nil},
		{Group: "eu-1", Node: "e-2", Generation: 8, Sent: now.Add(-2 * time.Hour), Outcomes: &wire.Outcomes{Agents: 5,
			Generations: []wire.GenOutcome{{Generation: 7, Installed: 5}}}},
	}}}
}

func gates() *wire.Gates {
	return &wire.Gates{Plan: "fleet", Newest: pin(8), Rings: []wire.Ring{
		{Name: "canary", Groups: []string{"branch-a"}, Open: pin(8)},
		{Name: "early", Groups: []string{"branch-b"}, Open: pin(7)},
		{Name: "broad", Groups: []string{"*"}, Open: pin(7)},
	}}
}

func TestComputeRings(t *testing.T) {
	t.Parallel()
	g := gates()
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	r := Compute(tree(), g, now)
	byName := map[string]Group{}
	for _, gr := range r.Groups {
		byName[gr.Name] = gr
	}
	a := byName["branch-a"]
	want := Counts{Agents: 11, Reporting: 10, OnTarget: 5, Behind: 3, Failed: 2, NotReporting: 1,
		OldestReport: now.Add(-30 * time.Minute), OldestAgeSeconds: 1800,
		Reasons: []wire.Reason{{Reason: "exit 1: disk full", Count: 2}}}
	if a.Ring != "canary" || a.Target != 8 || a.Relays != 1 || !reflect.DeepEqual(a.ComplianceCounts, want) {
		t.Errorf("branch-a: %+v\nwant %+v", a, want)
	}
	b := byName["branch-b"]
	if b.Ring != "early" || b.Target != 7 || b.OnTarget != 3 || b.NotReporting != 1 || b.OldestAgeSeconds != 7200 {
		t.Errorf("branch-b: %+v", b)
	}
	// eu-1: a relay without outcomes (3 streaming agents) and a stale one
	// (5 agents): all 8 not reporting.
	e := byName["eu-1"]
	if e.Ring != "broad" || e.Relays != 2 || e.Agents != 8 || e.NotReporting != 8 || e.Reporting != 0 || !e.OldestReport.IsZero() {
		t.Errorf("eu-1: %+v", e)
	}
	if h := byName["hq"]; h.Agents != 0 || h.Ring != "broad" {
		t.Errorf("hq: %+v", h)
	}
	if len(r.Groups) != 4 || r.Groups[0].Name != "branch-a" || r.Groups[3].Name != "hq" {
		t.Errorf("groups not sorted: %+v", r.Groups)
	}
	if r.Total.Agents != 23 || r.Total.OnTarget != 8 || r.Total.NotReporting != 10 || r.Total.Reporting != 13 || r.Total.OldestAgeSeconds != 7200 {
		t.Errorf("total: %+v", r.Total)
	}
	if len(r.Rings) != 3 || r.Rings[0].Failed != 2 || r.Rings[0].Open != 8 || r.Rings[2].Groups != 2 || r.Rings[2].Agents != 8 {
		t.Errorf("rings: %+v", r.Rings)
	}
	if r.Plan != "fleet" || r.Newest != 8 {
		t.Errorf("plan %q newest %d", r.Plan, r.Newest)
	}
}

func TestComputeWithoutGates(t *testing.T) {
	t.Parallel()
	r := Compute(tree(), nil, now)
	if r.Newest != 8 || len(r.Rings) != 0 {
		t.Fatalf("newest %d rings %v", r.Newest, r.Rings)
	}
	for _, g := range r.Groups {
		if g.Target != 8 || g.Ring != "" {
			t.Errorf("%s: target %d ring %q", g.Name, g.Target, g.Ring)
		}
		// branch-b's agents are on 7: behind the newest.
		if g.Name == "branch-b" && (g.Behind != 3 || g.OnTarget != 0) {
			t.Errorf("branch-b: %+v", g)
		}
	}
	if r.Total.Reasons[0].Reason != "exit 1: disk full" || len(r.Total.Reasons) != 1 {
		t.Errorf("reasons: %+v (a failure of an older generation is not one of the target's)", r.Total.Reasons)
	}
}

func TestComputeHostileCounts(t *testing.T) {
	t.Parallel()
	// A relay claiming more reports than agents: they are known agents,
	// and nothing goes negative.
	r := Compute([]wire.Report{{Group: "x", Node: "x", Sent: now, Outcomes: &wire.Outcomes{Agents: 1,
		Generations: []wire.GenOutcome{{Generation: 1, Installed: 5}}}}}, nil, now)
	if c := r.Total; c.Agents != 5 || c.OnTarget != 5 || c.NotReporting != 0 || c.Reporting != 5 {
		t.Fatalf("%+v", c)
	}
	if r := Compute(nil, &wire.Gates{}, now); r.Groups == nil || r.Total.Agents != 0 {
		t.Fatalf("empty: %+v", r)
	}
}

// A branch relay reports to both relays of its parent group: at the
// origin it reaches the tree twice and counts once, by its newest report.
func TestComputeRelayOfTwoParents(t *testing.T) {
	t.Parallel()
	branch := func(sent time.Time, installed int) wire.Report {
		return wire.Report{Group: "branch", Node: "b-1", Generation: 2, Sent: sent, Outcomes: &wire.Outcomes{Agents: 3,
			Generations: []wire.GenOutcome{{Generation: 2, Installed: installed}}}}
	}
	reports := []wire.Report{{Group: "origin", Node: "o", Generation: 2, Sent: now, Children: []wire.Report{
		{Group: "hq", Node: "hq-1", Sent: now, Children: []wire.Report{branch(now.Add(-20*time.Second), 1)}},
		{Group: "hq", Node: "hq-2", Sent: now, Children: []wire.Report{branch(now.Add(-5*time.Second), 3)}},
	}}}
	r := Compute(reports, nil, now)
	var b Group
	for _, g := range r.Groups {
		if g.Name == "branch" {
			b = g
		}
	}
	if b.Relays != 1 || b.Agents != 3 || b.OnTarget != 3 || b.NotReporting != 0 {
		t.Fatalf("branch counted %+v; want its newest report once", b)
	}
	// Stale past the caller's age: its agents are not reporting.
	r = ComputeStale(reports, nil, now, 3*time.Second)
	for _, g := range r.Groups {
		if g.Name == "branch" && (g.NotReporting != 3 || g.OnTarget != 0) {
			t.Fatalf("stale branch %+v", g)
		}
	}
}
