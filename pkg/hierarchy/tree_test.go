package hierarchy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/wire"
)

func TestTreeKeepsAndExpiresReports(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Unix(1700000000, 0))
	tr := NewTree(30*time.Second, clk)
	if err := tr.Put(wire.Report{Group: "branch-a", Node: "a1", Generation: 3}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(20 * time.Second)
	if err := tr.Put(wire.Report{Group: "branch-b", Node: "b1", Generation: 2}); err != nil {
		t.Fatal(err)
	}
	// A newer report of a1 replaces the old one.
	if err := tr.Put(wire.Report{Group: "branch-a", Node: "a1", Generation: 4}); err != nil {
		t.Fatal(err)
	}
	if got := tr.Children(); len(got) != 2 || got[0].Generation != 4 || got[1].Node != "b1" {
		t.Fatalf("children %+v", got)
	}
	// Past the TTL a report is kept (its relay shows as gone), until it
	// is goneFor TTLs old.
	clk.Advance(31 * time.Second)
	if got := tr.Children(); len(got) != 2 {
		t.Fatalf("children just after the TTL: %+v, want both, shown as gone", got)
	}
	clk.Advance(goneFor*30*time.Second - 30*time.Second)
	if got := tr.Children(); len(got) != 0 {
		t.Fatalf("children %d TTLs on: %+v, want none", goneFor, got)
	}
}

// A relay that stops reporting turns stale after two report intervals and
// gone after three (the TTL), on the clock of the relay showing the tree,
// and stays in the tree as gone; one that reports again is ok again.
func TestViewHealthFromReportAge(t *testing.T) {
	t.Parallel()
	const every = 10 * time.Second
	clk := clock.NewFake(time.Unix(1700000000, 0))
	tr := NewTree(3*every, clk)
	put := func(node string, ready bool) {
		t.Helper()
		if err := tr.Put(wire.Report{Group: "branch-a", Node: node, Ready: ready, Sent: clk.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	health := func() string {
		v := View("hq", 1, nil, tr.Children(), clk.Now(), AgesFor(every))
		var out []string
		for _, g := range v.Children {
			for _, m := range g.Members {
				out = append(out, m.Node+"="+m.Health)
			}
		}
		return strings.Join(out, " ")
	}
	put("a1", true)
	put("a2", false)
	put("a3", true) // killed: it never reports again
	if got := health(); got != "a1=ok a2=not ready a3=ok" {
		t.Fatalf("fresh: %s", got)
	}
	for _, step := range []struct {
		advance time.Duration
		want    string
	}{
		{every, "a1=ok a2=not ready a3=ok"},
		{every + time.Second, "a1=ok a2=not ready a3=stale"},
		{every, "a1=ok a2=not ready a3=gone"},
		{3 * time.Minute, "a1=ok a2=not ready a3=gone"},
	} {
		clk.Advance(step.advance)
		put("a1", true)
		put("a2", false)
		if got := health(); got != step.want {
			t.Fatalf("%s after a3's last report: %s, want %s", clk.Now().Sub(time.Unix(1700000000, 0)), got, step.want)
		}
	}
	put("a3", true) // back
	if got := health(); got != "a1=ok a2=not ready a3=ok" {
		t.Fatalf("a3 reporting again: %s", got)
	}
}

func TestReportValidate(t *testing.T) {
	t.Parallel()
	deep := wire.Report{Group: "g", Node: "n"}
	for range wire.MaxReportDepth + 1 {
		deep = wire.Report{Group: "g", Node: "n", Children: []wire.Report{deep}}
	}
	wide := wire.Report{Group: "g", Node: "n"}
	for i := range wire.MaxReportNodes {
		wide.Children = append(wide.Children, wire.Report{Group: "g", Node: fmt.Sprint(i)})
	}
	for name, r := range map[string]wire.Report{
		"no group":  {Node: "n"},
		"no node":   {Group: "g"},
		"long name": {Group: strings.Repeat("g", 300), Node: "n"},
		"deep":      deep,
		"wide":      wide,
		"bad child": {Group: "g", Node: "n", Children: []wire.Report{{Group: "x"}}},
	} {
		if err := r.Validate(); !errors.Is(err, wire.ErrBadReport) {
			t.Errorf("%s: Validate = %v, want ErrBadReport", name, err)
		}
	}
}

// View groups reports by group level by level, merges a relay reported
// along several paths (newest wins) and computes the lag behind the
// generation the relay showing the tree serves.
func TestView(t *testing.T) {
	t.Parallel()
	now := time.Unix(1700000100, 0)
	old, fresh := now.Add(-20*time.Second), now.Add(-2*time.Second)
	leaf := func(sent time.Time, gen uint64) wire.Report {
		return wire.Report{Group: "shop-1", Node: "s1", Mode: "proxy", Generation: gen, Ready: true, Sent: sent}
	}
	children := []wire.Report{
		// Both relays of branch-a hold s1's report (it reports to each).
		{Group: "branch-a", Node: "a1", Mode: "proxy", Generation: 7, Ready: true, Sent: fresh, Children: []wire.Report{leaf(old, 5)}},
		{Group: "branch-a", Node: "a2", Mode: "proxy", Generation: 6, Ready: false, Problem: "disk full", Sent: fresh,
			Children: []wire.Report{leaf(fresh, 6)}},
		{Group: "branch-b", Node: "b1", Mode: "mirror", Generation: 7, Ready: true, Sent: fresh},
	}
	members := []wire.Report{{Group: "hq", Node: "hq-2", Mode: "mirror", Generation: 7, Ready: true},
		{Group: "hq", Node: "hq-1", Mode: "mirror", Generation: 7, Ready: true}}
	v := View("hq", 7, members, children, now, AgesFor(10*time.Second))
	if v.Group != "hq" || len(v.Members) != 2 || v.Members[0].Node != "hq-1" || v.Members[0].Age != "" {
		t.Fatalf("top: %+v", v)
	}
	if len(v.Children) != 2 || v.Children[0].Group != "branch-a" || v.Children[1].Group != "branch-b" {
		t.Fatalf("children: %+v", v.Children)
	}
	a := v.Children[0]
	if len(a.Members) != 2 || a.Members[1].Lag != 1 || a.Members[1].Problem != "disk full" || a.Members[0].Age != "2s" {
		t.Fatalf("branch-a: %+v", a.Members)
	}
	if len(a.Children) != 1 || len(a.Children[0].Members) != 1 {
		t.Fatalf("below branch-a: %+v", a.Children)
	}
	if s1 := a.Children[0].Members[0]; s1.Generation != 6 || s1.Lag != 1 {
		t.Fatalf("s1 = %+v, want its newest report (generation 6, lag 1)", s1)
	}
}

// Under a rate cap, background reads wait while foreground reads pull.
func TestLimiterForegroundFirst(t *testing.T) {
	t.Parallel()
	l := newLimiter(limitConfig{rate: 1 << 20}) // 1 MiB/s, 100 KiB per read
	ctx := context.Background()
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	stop := time.Now().Add(600 * time.Millisecond)
	started := make(chan struct{})
	wg.Go(func() {
		for i := 0; time.Now().Before(stop); i++ {
			_ = l.wait(ctx, ClassForeground, l.chunk)
			mu.Lock()
			order = append(order, "fg")
			mu.Unlock()
			if i == 0 {
				close(started)
			}
		}
	})
	<-started // the foreground reader pulls first
	wg.Go(func() {
		_ = l.wait(ctx, ClassBackground, l.chunk)
		mu.Lock()
		order = append(order, "bg")
		mu.Unlock()
	})
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(order) < 3 || order[len(order)-1] != "bg" {
		t.Fatalf("order %v: the background read should come after the foreground ones", order)
	}
}

// The relays held across all reports are bounded, not only per report.
func TestTreeBoundsWhatItHolds(t *testing.T) {
	t.Parallel()
	tr := NewTree(time.Minute, clock.NewFake(time.Unix(1700000000, 0)))
	big := func(node string, n int) wire.Report {
		r := wire.Report{Group: "g", Node: node}
		for i := range n - 1 {
			r.Children = append(r.Children, wire.Report{Group: "c", Node: fmt.Sprint(i)})
		}
		return r
	}
	if err := tr.Put(big("a", wire.MaxReportNodes/2)); err != nil {
		t.Fatal(err)
	}
	if err := tr.Put(big("b", wire.MaxReportNodes/2)); err != nil {
		t.Fatal(err)
	}
	// A newcomer that does not fit pushes out the sender holding the
	// most (a, first of the two largest by name), not itself.
	if err := tr.Put(big("c", 2)); err != nil {
		t.Fatalf("a small report past the total: %v, want the largest pushed out", err)
	}
	if held := nodes(tr.Children()); held != "b c" {
		t.Fatalf("held %q, want b c", held)
	}
	// a comes back with as much as b holds: it would be (one of) the
	// largest, so it is refused, and b stays.
	if err := tr.Put(big("a", wire.MaxReportNodes/2)); !errors.Is(err, wire.ErrBadReport) {
		t.Fatalf("re-posting the largest report past the total: %v, want ErrBadReport", err)
	}
	// Replacing a report counts its new size, not both.
	if err := tr.Put(big("b", wire.MaxReportNodes/2)); err != nil {
		t.Fatalf("replacing a report of the same size: %v", err)
	}
}

func nodes(rs []wire.Report) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Node)
	}
	return strings.Join(out, " ")
}

// TestFillerCannotKeepChildrenOut: a sender re-posting a report that
// fills the whole budget does not stop the real children's reports; the
// filler is the one refused.
func TestFillerCannotKeepChildrenOut(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Unix(1700000000, 0))
	tr := NewTree(time.Minute, clk)
	filler := wire.Report{Group: "evil", Node: "filler"}
	for i := range wire.MaxReportNodes - 1 {
		filler.Children = append(filler.Children, wire.Report{Group: "fake", Node: fmt.Sprint(i)})
	}
	if err := tr.Put(filler); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		for _, n := range []string{"a-1", "a-2", "b-1"} {
			if err := tr.Put(wire.Report{Group: "branch", Node: n, Generation: 2}); err != nil {
				t.Fatalf("round %d: real child %s refused: %v", round, n, err)
			}
		}
		if err := tr.Put(filler); !errors.Is(err, wire.ErrBadReport) {
			t.Fatalf("round %d: the filler re-posted: %v, want refused", round, err)
		}
		clk.Advance(time.Second)
	}
	if held := nodes(tr.Children()); held != "a-1 a-2 b-1" {
		t.Fatalf("held %q", held)
	}
}

// TestLagAgainstOwnGeneration: a report claiming a huge generation shows
// as ahead (lag 0) and does not make the real relays look behind.
func TestLagAgainstOwnGeneration(t *testing.T) {
	t.Parallel()
	now := time.Unix(1700000100, 0)
	children := []wire.Report{
		{Group: "branch", Node: "real", Generation: 5, Sent: now},
		{Group: "branch", Node: "old", Generation: 3, Sent: now},
		{Group: "evil", Node: "fake", Generation: 999999, Agents: 1 << 24, Sent: now,
			Children: []wire.Report{{Group: "below", Node: "x", Generation: 5}}},
	}
	v := View("hq", 5, []wire.Report{{Group: "hq", Node: "hq-1", Generation: 5}}, children, now, AgesFor(10*time.Second))
	lag := map[string]uint64{}
	ahead := map[string]bool{}
	var walk func(GroupView)
	walk = func(g GroupView) {
		for _, m := range g.Members {
			lag[m.Node], ahead[m.Node] = m.Lag, m.Ahead
		}
		for _, c := range g.Children {
			walk(c)
		}
	}
	walk(v)
	want := map[string]uint64{"hq-1": 0, "real": 0, "old": 2, "fake": 0, "x": 0}
	for n, l := range want {
		if lag[n] != l {
			t.Errorf("%s: lag %d, want %d (all: %v)", n, lag[n], l, lag)
		}
	}
	if !ahead["fake"] || ahead["real"] || ahead["hq-1"] {
		t.Errorf("ahead %v, want only fake", ahead)
	}
}
