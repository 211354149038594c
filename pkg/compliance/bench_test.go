package compliance

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/wire"
)

// benchTree is a parent with groups branch groups of relaysPer relays,
// agents agents per group, spread over four generations with five failure
// reasons each (the most a relay reports): the report tree the issue's
// bench item names (100 groups × 10,000 agents).
func benchTree(groups, relaysPer, agents int) []wire.Report {
	top := wire.Report{Group: "hq", Node: "hq-1", Generation: 10, Sent: now, Outcomes: &wire.Outcomes{}}
	per := agents / relaysPer
	for g := range groups {
		for r := range relaysPer {
			o := &wire.Outcomes{Agents: per, Oldest: now.Add(-time.Duration(g) * time.Minute)}
			left := per
			for gen := uint64(10); gen > 6; gen-- {
				n := left / 2
				if gen == 7 {
					n = left
				}
				left -= n
				gr := wire.GenOutcome{Generation: gen, Installed: n * 8 / 10, Downloaded: n / 10, Failed: n - n*8/10 - n/10}
				for i := range wire.MaxOutcomeReasons {
					gr.Reasons = append(gr.Reasons, wire.Reason{Reason: fmt.Sprintf("exit %d: could not write C:\\Program Files\\app\\%d.dll", i+1, i), Count: gr.Failed / 5})
				}
				o.Generations = append(o.Generations, gr)
			}
			top.Children = append(top.Children, wire.Report{Group: fmt.Sprintf("branch-%03d", g), Node: fmt.Sprintf("b%03d-%d", g, r),
				Generation: 10, Sent: now, Outcomes: o})
		}
	}
	return []wire.Report{top}
}

func benchGates() *wire.Gates {
	g := &wire.Gates{Plan: "fleet", Newest: pin(10), Rings: []wire.Ring{
		{Name: "canary", Groups: []string{"branch-00*"}, Open: pin(10)},
		{Name: "early", Groups: []string{"branch-0[1-4]*"}, Open: pin(9)},
		{Name: "broad", Groups: []string{"*"}, Open: pin(8)},
	}}
	return g
}

// BenchmarkCompute: CPU of Compute and the size of the /v1/compliance
// body it makes (reported as body_bytes) at 100 groups × 10,000 agents.
func BenchmarkCompute(b *testing.B) {
	for _, bc := range []struct {
		name                      string
		groups, relaysPer, agents int
	}{
		{"100groups_x_10000agents_2relays", 100, 2, 10_000},
		{"100groups_x_100agents_1relay", 100, 1, 100},
	} {
		b.Run(bc.name, func(b *testing.B) {
			reports, g := benchTree(bc.groups, bc.relaysPer, bc.agents), benchGates()
			body, err := json.Marshal(Compute(reports, g, now))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				Compute(reports, g, now)
			}
			b.ReportMetric(float64(len(body)), "body_bytes")
		})
	}
}

// TestComputeBenchTree checks the bench's tree adds up: every agent is
// counted once.
func TestComputeBenchTree(t *testing.T) {
	t.Parallel()
	r := Compute(benchTree(100, 2, 10_000), benchGates(), now)
	if r.Total.Agents != 1_000_000 || len(r.Groups) != 101 || r.Total.NotReporting != 0 {
		t.Fatalf("total %+v, %d groups", r.Total, len(r.Groups))
	}
	if c := r.Total; c.OnTarget+c.Behind+c.Failed+c.NotReporting != c.Agents {
		t.Fatalf("states do not add up: %+v", c)
	}
}
