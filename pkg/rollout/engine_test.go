package rollout

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/relayd/relayd/pkg/wire"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func pin(v uint64) wire.Pin {
	return wire.Pin{Version: v, Length: 100 + int64(v), SHA256: fmt.Sprintf("%064x", v)}
}

func testPlan(t testing.TB) *Plan {
	t.Helper()
	p, err := ParsePlan([]byte(examplePlan))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// counts are literal outcomes: ring index → counts (of any generation).
type counts map[int]Counts

func (c counts) Ring(ring int, _ uint64) Counts { return c[ring] }

func opens(t *testing.T, e *Engine) []uint64 {
	t.Helper()
	g := e.Gates()
	if err := g.Validate(); err != nil && g.Newest.Version > 0 {
		t.Fatalf("gates do not validate: %v", err)
	}
	out := make([]uint64, len(g.Rings))
	for i, r := range g.Rings {
		out[i] = r.Open.Version
	}
	return out
}

func mustChange(t *testing.T, ch Change, err error, kind string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ch.Decisions {
		if d.Kind == kind {
			if ch.Gates == nil {
				t.Fatalf("decision %s without new gates", kind)
			}
			return
		}
	}
	t.Fatalf("decisions %+v, want one %q", ch.Decisions, kind)
}

func TestEngineOpensRingsInTurn(t *testing.T) {
	t.Parallel()
	e, _, err := Open(testPlan(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := e.Started(t0, pin(1))
	mustChange(t, ch, err, DecisionAdopt)
	if got := fmt.Sprint(opens(t, e)); got != "[1 1 1]" {
		t.Fatalf("adopted: %s", got)
	}
	ch, err = e.NewGeneration(t0, pin(2))
	mustChange(t, ch, err, DecisionOpen)
	if got := fmt.Sprint(opens(t, e)); got != "[2 1 1]" {
		t.Fatalf("after publish: %s, want ring 0 open at once", got)
	}
	good := counts{0: {Reporting: 10, Installed: 10}, 1: {Reporting: 5, Installed: 5}}
	// Met at t0+1m: the 10 minutes of soak start then.
	if ch, err := e.Tick(t0.Add(time.Minute), good); err != nil || len(ch.Decisions) != 0 {
		t.Fatalf("tick: %+v %v", ch, err)
	}
	if ch, _ := e.Tick(t0.Add(10*time.Minute), good); len(ch.Decisions) != 0 {
		t.Fatalf("opened before the soak: %+v", ch)
	}
	// A break restarts the soak.
	e.Tick(t0.Add(10*time.Minute+30*time.Second), counts{0: {Reporting: 10, Installed: 9}})
	if ch, _ := e.Tick(t0.Add(12*time.Minute), good); len(ch.Decisions) != 0 {
		t.Fatalf("opened although the gate broke: %+v", ch)
	}
	ch, err = e.Tick(t0.Add(22*time.Minute), good)
	mustChange(t, ch, err, DecisionOpen)
	if got := fmt.Sprint(opens(t, e)); got != "[2 2 1]" {
		t.Fatalf("after the soak: %s", got)
	}
	if g := ch.Gates; g.Rings[1].Since != t0.Add(22*time.Minute) || g.Rings[2].Open != pin(1) {
		t.Fatalf("gates %+v", g)
	}
	// Ring 1 needs 5 agents; 4 is not enough whatever the ratio.
	e.Tick(t0.Add(23*time.Minute), counts{0: good[0], 1: {Reporting: 4, Installed: 4}})
	if ch, _ := e.Tick(t0.Add(3*time.Hour), counts{0: good[0], 1: {Reporting: 4, Installed: 4}}); len(ch.Decisions) != 0 {
		t.Fatalf("min_agents ignored: %+v", ch)
	}
	e.Tick(t0.Add(3*time.Hour), good)
	ch, err = e.Tick(t0.Add(4*time.Hour), good)
	mustChange(t, ch, err, DecisionOpen)
	if got := fmt.Sprint(opens(t, e)); got != "[2 2 2]" {
		t.Fatalf("all open: %s", got)
	}
}

func TestEngineHaltsOnFailures(t *testing.T) {
	t.Parallel()
	e, _, _ := Open(testPlan(t), nil)
	e.Started(t0, pin(1))
	e.NewGeneration(t0, pin(2))
	bad := counts{0: {Reporting: 10, Installed: 7, Failed: 3, TopReason: "exit 1: disk full"}}
	ch, err := e.Tick(t0.Add(time.Minute), bad)
	mustChange(t, ch, err, DecisionHalt)
	g := e.Gates()
	if !g.Halted || !strings.Contains(g.Reason, `ring "canary"`) || !strings.Contains(g.Reason, "3 of 10") || !strings.Contains(g.Reason, "exit 1: disk full") {
		t.Fatalf("gates %+v: want halted with ring, counts and top reason", g)
	}
	// Halted: nothing opens, by itself or by hand.
	if ch, _ := e.Tick(t0.Add(5*time.Hour), counts{0: {Reporting: 10, Installed: 10}}); len(ch.Decisions) != 0 {
		t.Fatalf("a halted rollout decided %+v", ch)
	}
	if _, err := e.Promote(t0, ""); !errors.Is(err, ErrHalted) {
		t.Fatalf("promote while halted: %v", err)
	}
	// Resume acknowledges the 3 failures: only new ones halt again.
	ch, err = e.Resume(bad)
	mustChange(t, ch, err, DecisionResume)
	if ch, _ := e.Tick(t0.Add(2*time.Hour), bad); e.Gates().Halted {
		t.Fatalf("halted again on acknowledged failures: %+v", ch)
	}
	ch, err = e.Tick(t0.Add(2*time.Hour), counts{0: {Reporting: 10, Installed: 6, Failed: 4}})
	mustChange(t, ch, err, DecisionHalt)
	// A new generation (the fix) waits for the resume too; then ring 0
	// opens at it and its own counts are judged.
	ch, err = e.NewGeneration(t0.Add(3*time.Hour), pin(3))
	mustChange(t, ch, err, DecisionGeneration)
	if got := fmt.Sprint(opens(t, e)); got != "[2 1 1]" {
		t.Fatalf("halted, new generation: %s", got)
	}
	byGen := InputsFunc(func(ring int, gen uint64) Counts {
		if gen == 3 {
			return Counts{Reporting: 10, Installed: 10}
		}
		return bad[ring]
	})
	e.Resume(byGen)
	ch, err = e.Tick(t0.Add(3*time.Hour), byGen)
	mustChange(t, ch, err, DecisionOpen)
	if got := fmt.Sprint(opens(t, e)); got != "[3 1 1]" || e.Gates().Halted {
		t.Fatalf("resumed: %s halted %v", got, e.Gates().Halted)
	}
}

func TestEngineManual(t *testing.T) {
	t.Parallel()
	e, _, _ := Open(testPlan(t), nil)
	if _, err := e.Promote(t0, ""); !errors.Is(err, ErrNoGeneration) {
		t.Fatalf("promote with nothing published: %v", err)
	}
	e.Started(t0, pin(4))
	e.NewGeneration(t0, pin(5))
	if _, err := e.Promote(t0, "nope"); !errors.Is(err, ErrUnknownRing) {
		t.Fatalf("unknown ring: %v", err)
	}
	ch, err := e.Promote(t0, "")
	mustChange(t, ch, err, DecisionPromote)
	if got := fmt.Sprint(opens(t, e)); got != "[5 5 4]" {
		t.Fatalf("promote next: %s", got)
	}
	ch, err = e.Halt("bad driver")
	mustChange(t, ch, err, DecisionManualHalt)
	if _, err := e.Halt(strings.Repeat("x", MaxReason+1)); !errors.Is(err, ErrBadReason) {
		t.Fatalf("long reason: %v", err)
	}
	if _, err := e.Promote(t0, "broad"); !errors.Is(err, ErrHalted) {
		t.Fatalf("promote halted: %v", err)
	}
	e.Resume(counts{})
	ch, err = e.Promote(t0, "broad")
	mustChange(t, ch, err, DecisionPromote)
	if got := fmt.Sprint(opens(t, e)); got != "[5 5 5]" {
		t.Fatalf("promote broad: %s", got)
	}
	if ch, err := e.Promote(t0, ""); err != nil || len(ch.Decisions) != 0 {
		t.Fatalf("promote with every ring open: %+v %v", ch, err)
	}
	if _, err := e.NewGeneration(t0, pin(3)); !errors.Is(err, ErrOlderGeneration) {
		t.Fatalf("older generation: %v", err)
	}
}

func openDB(t *testing.T, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestEngineSurvivesRestart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rollout.db")
	db := openDB(t, path)
	e, _, err := Open(testPlan(t), db)
	if err != nil {
		t.Fatal(err)
	}
	e.Started(t0, pin(1))
	e.NewGeneration(t0, pin(2))
	good := counts{0: {Reporting: 3, Installed: 3}}
	e.Tick(t0.Add(time.Minute), good)
	db.Close()

	db = openDB(t, path)
	defer db.Close()
	e, ch, err := Open(testPlan(t), db)
	if err != nil || len(ch.Decisions) != 0 {
		t.Fatalf("reopen: %+v %v", ch, err)
	}
	// Started with the same generation: nothing reopens or is adopted.
	if ch, err := e.Started(t0.Add(2*time.Minute), pin(2)); err != nil || len(ch.Decisions) != 0 {
		t.Fatalf("restart decided %+v %v", ch, err)
	}
	if got := fmt.Sprint(opens(t, e)); got != "[2 1 1]" {
		t.Fatalf("after restart: %s", got)
	}
	// The soak counted before the restart still counts.
	ch, err = e.Tick(t0.Add(11*time.Minute), good)
	mustChange(t, ch, err, DecisionOpen)

	// A new plan keeps the rings by name; a new ring starts where the
	// widest ring was.
	p := testPlan(t)
	p.Rings = append(p.Rings[:2], RingPlan{Name: "labs", Groups: []string{"lab-*"}}, p.Rings[2])
	db.Close()
	db = openDB(t, path)
	e3, ch, err := Open(p, db)
	mustChange(t, ch, err, DecisionPlan)
	if got := fmt.Sprint(opens(t, e3)); got != "[2 2 1 1]" {
		t.Fatalf("new plan: %s", got)
	}
}
