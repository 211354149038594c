package rollout

import (
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestEngineProperties drives the engine with random publishes, ticks,
// promotes, halts and resumes: rings never open out of order, a halted
// rollout never opens a ring, and no ring's open generation goes back.
func TestEngineProperties(t *testing.T) {
	t.Parallel()
	plan := testPlan(t)
	rapid.Check(t, func(rt *rapid.T) {
		e, _, err := Open(plan, nil)
		if err != nil {
			rt.Fatal(err)
		}
		now := t0
		newest := uint64(rapid.Uint64Range(0, 3).Draw(rt, "first"))
		if newest > 0 {
			e.Started(now, pin(newest))
		}
		prev := e.Gates()
		for step := range rapid.IntRange(1, 60).Draw(rt, "steps") {
			halted := prev.Halted
			now = now.Add(time.Duration(rapid.Int64Range(0, int64(2*time.Hour)).Draw(rt, "advance")))
			var ch Change
			switch rapid.IntRange(0, 5).Draw(rt, "action") {
			case 0:
				newest++
				ch, err = e.NewGeneration(now, pin(newest))
			case 1, 2:
				c := make(counts)
				for i := range plan.Rings {
					rep := rapid.IntRange(0, 20).Draw(rt, "reporting")
					inst := rapid.IntRange(0, rep).Draw(rt, "installed")
					c[i] = Counts{Reporting: rep, Installed: inst, Failed: rapid.IntRange(0, rep-inst).Draw(rt, "failed")}
				}
				ch, err = e.Tick(now, c)
			case 3:
				names := []string{"", "canary", "early", "broad", "nope"}
				ch, err = e.Promote(now, rapid.SampledFrom(names).Draw(rt, "ring"))
			case 4:
				ch, err = e.Halt(rapid.SampledFrom([]string{"", "by hand"}).Draw(rt, "reason"))
			case 5:
				ch, err = e.Resume(counts{})
			}
			if err != nil && !IsActionError(err) {
				rt.Fatalf("step %d: %v", step, err)
			}
			g := e.Gates()
			if g.Newest.Version > 0 {
				if err := g.Validate(); err != nil {
					rt.Fatalf("step %d: gates out of order: %v", step, err)
				}
			}
			if ch.Gates != nil && ch.Gates.Newest != g.Newest {
				rt.Fatalf("step %d: the change's gates are not the engine's", step)
			}
			for i, r := range g.Rings {
				was := prev.Rings[i].Open.Version
				switch {
				case r.Open.Version < was:
					rt.Fatalf("step %d: ring %s went back from %d to %d", step, r.Name, was, r.Open.Version)
				case halted && r.Open.Version != was:
					rt.Fatalf("step %d: ring %s opened (%d → %d) while halted", step, r.Name, was, r.Open.Version)
				case r.Open.Version > 0 && r.Open != pin(r.Open.Version):
					rt.Fatalf("step %d: ring %s open at a pin never published: %+v", step, r.Name, r.Open)
				}
			}
			prev = g
		}
	})
}
