package outcome

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/wire"
)

func TestTableSummary(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC))
	tb := New(Config{}, clk)
	put := func(agent string, gen uint64, state, reason string) {
		t.Helper()
		if err := tb.Put(wire.Outcome{Agent: agent, Generation: gen, State: state, Reason: reason}, "10.0.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	start := clk.Now()
	put("a", 1, wire.OutcomeInstalled, "")
	clk.Advance(time.Minute)
	put("b", 2, wire.OutcomeFailed, "exit 1: boom")
	put("c", 2, wire.OutcomeFailed, "exit 1: boom")
	put("d", 2, wire.OutcomeFailed, "exit 2: \x1b[31mred")
	put("e", 2, wire.OutcomeDownloaded, "")
	put("a", 2, wire.OutcomeInstalled, "") // a's newest report replaces its first
	for g := uint64(3); g <= 6; g++ {
		put(fmt.Sprint("g", g), g, wire.OutcomeInstalled, "")
	}
	s := tb.Summary([]string{"a", "streaming-only", ""})
	if s.Agents != 10 || !s.Oldest.Equal(start.Add(time.Minute)) {
		t.Fatalf("agents %d oldest %v", s.Agents, s.Oldest)
	}
	if len(s.Generations) != wire.MaxOutcomeGenerations || s.Generations[0].Generation != 6 || s.Generations[3].Generation != 3 {
		t.Fatalf("generations: %+v", s.Generations)
	}
	tb2 := New(Config{}, clk)
	for _, o := range []wire.Outcome{{Agent: "b", Generation: 2, State: wire.OutcomeFailed, Reason: "exit 1: boom"},
		{Agent: "c", Generation: 2, State: wire.OutcomeFailed, Reason: "exit 1: boom"},
		{Agent: "d", Generation: 2, State: wire.OutcomeFailed, Reason: "exit 2: \x1b[31mred"},
		{Agent: "a", Generation: 2, State: wire.OutcomeInstalled}} {
		if err := tb2.Put(o, "x"); err != nil {
			t.Fatal(err)
		}
	}
	g := tb2.Summary(nil).Generations[0]
	if g.Installed != 1 || g.Failed != 3 || len(g.Reasons) != 2 || g.Reasons[0] != (wire.Reason{Reason: "exit 1: boom", Count: 2}) ||
		g.Reasons[1].Reason != "exit 2: ?[31mred" {
		t.Fatalf("%+v", g)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestTableBounds(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC))
	tb := New(Config{MaxAgents: 100, PerAddr: 60, MaxAge: time.Hour}, clk)
	refused := 0
	for i := range 10_000 {
		err := tb.Put(wire.Outcome{Agent: fmt.Sprint("fake-", i), Generation: 1, State: wire.OutcomeInstalled}, "10.0.0.66")
		if errors.Is(err, ErrAddrBudget) {
			refused++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if tb.Len() != 60 || refused != 10_000-60 {
		t.Fatalf("one address: %d agents, %d refused", tb.Len(), refused)
	}
	// Others still get in; past MaxAgents the oldest go.
	for i := range 80 {
		clk.Advance(time.Second)
		if err := tb.Put(wire.Outcome{Agent: fmt.Sprint("real-", i), Generation: 1, State: wire.OutcomeInstalled}, fmt.Sprint("10.1.0.", i)); err != nil {
			t.Fatal(err)
		}
	}
	if tb.Len() != 100 {
		t.Fatalf("len %d, want 100", tb.Len())
	}
	// The fake agents were the oldest: 40 evicted, and their address
	// may report for 40 more.
	if err := tb.Put(wire.Outcome{Agent: "fake-new", Generation: 1, State: wire.OutcomeInstalled}, "10.0.0.66"); err != nil {
		t.Fatal(err)
	}
	// Reports older than MaxAge go: real-49 (at +50 s) is the oldest kept.
	clk.Advance(time.Hour - 30*time.Second)
	if n := tb.Summary(nil).Agents; n != 32 {
		t.Fatalf("%d agents, want the 32 reported within the hour", n)
	}
	for _, o := range []wire.Outcome{{Agent: "", Generation: 1, State: "installed"}, {Agent: "x", Generation: 1, State: "done"},
		{Agent: "x", Generation: 1, State: "failed", Reason: strings.Repeat("r", 201)}, {Agent: "x", State: "installed"}} {
		if err := tb.Put(o, "a"); err == nil {
			t.Errorf("%+v taken", o)
		}
	}
}
