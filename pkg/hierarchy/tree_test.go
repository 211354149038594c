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
)

func TestTreeKeepsAndExpiresReports(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Unix(1700000000, 0))
	tr := NewTree(30*time.Second, clk)
	if err := tr.Put(Report{Group: "branch-a", Node: "a1", Generation: 3}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(20 * time.Second)
	if err := tr.Put(Report{Group: "branch-b", Node: "b1", Generation: 2}); err != nil {
		t.Fatal(err)
	}
	// A newer report of a1 replaces the old one.
	if err := tr.Put(Report{Group: "branch-a", Node: "a1", Generation: 4}); err != nil {
		t.Fatal(err)
	}
	if got := tr.Children(); len(got) != 2 || got[0].Generation != 4 || got[1].Node != "b1" {
		t.Fatalf("children %+v", got)
	}
	clk.Advance(31 * time.Second)
	if got := tr.Children(); len(got) != 0 {
		t.Fatalf("children after the TTL: %+v, want none", got)
	}
}

func TestReportValidate(t *testing.T) {
	t.Parallel()
	deep := Report{Group: "g", Node: "n"}
	for range maxReportDepth + 1 {
		deep = Report{Group: "g", Node: "n", Children: []Report{deep}}
	}
	wide := Report{Group: "g", Node: "n"}
	for i := range maxReportNodes {
		wide.Children = append(wide.Children, Report{Group: "g", Node: fmt.Sprint(i)})
	}
	for name, r := range map[string]Report{
		"no group":  {Node: "n"},
		"no node":   {Group: "g"},
		"long name": {Group: strings.Repeat("g", 300), Node: "n"},
		"deep":      deep,
		"wide":      wide,
		"bad child": {Group: "g", Node: "n", Children: []Report{{Group: "x"}}},
	} {
		if err := r.Validate(); !errors.Is(err, ErrBadReport) {
			t.Errorf("%s: Validate = %v, want ErrBadReport", name, err)
		}
	}
}

// View groups reports by group level by level, merges a relay reported
// along several paths (newest wins) and computes the lag behind the
// newest generation anywhere in the tree.
func TestView(t *testing.T) {
	t.Parallel()
	now := time.Unix(1700000100, 0)
	old, fresh := now.Add(-20*time.Second), now.Add(-2*time.Second)
	leaf := func(sent time.Time, gen uint64) Report {
		return Report{Group: "shop-1", Node: "s1", Mode: "proxy", Generation: gen, Ready: true, Sent: sent}
	}
	children := []Report{
		// Both relays of branch-a hold s1's report (it reports to each).
		{Group: "branch-a", Node: "a1", Mode: "proxy", Generation: 7, Ready: true, Sent: fresh, Children: []Report{leaf(old, 5)}},
		{Group: "branch-a", Node: "a2", Mode: "proxy", Generation: 6, Ready: false, Problem: "disk full", Sent: fresh,
			Children: []Report{leaf(fresh, 6)}},
		{Group: "branch-b", Node: "b1", Mode: "mirror", Generation: 7, Ready: true, Sent: fresh},
	}
	members := []Report{{Group: "hq", Node: "hq-2", Mode: "mirror", Generation: 7, Ready: true},
		{Group: "hq", Node: "hq-1", Mode: "mirror", Generation: 7, Ready: true}}
	v := View("hq", members, children, now)
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
	l := newLimiter(1 << 20) // 1 MiB/s, 100 KiB per read
	ctx := context.Background()
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	stop := time.Now().Add(600 * time.Millisecond)
	started := make(chan struct{})
	wg.Go(func() {
		for i := 0; time.Now().Before(stop); i++ {
			_ = l.wait(ctx, l.chunk)
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
		_ = l.wait(Background(ctx), l.chunk)
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
	big := func(node string, n int) Report {
		r := Report{Group: "g", Node: node}
		for i := range n - 1 {
			r.Children = append(r.Children, Report{Group: "c", Node: fmt.Sprint(i)})
		}
		return r
	}
	if err := tr.Put(big("a", maxReportNodes/2)); err != nil {
		t.Fatal(err)
	}
	if err := tr.Put(big("b", maxReportNodes/2)); err != nil {
		t.Fatal(err)
	}
	if err := tr.Put(big("c", 2)); !errors.Is(err, ErrBadReport) {
		t.Fatalf("a report past the total: %v, want ErrBadReport", err)
	}
	// Replacing a report counts its new size, not both.
	if err := tr.Put(big("a", maxReportNodes/2)); err != nil {
		t.Fatalf("replacing a report of the same size: %v", err)
	}
}
