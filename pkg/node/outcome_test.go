package node

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/relayd/relayd/pkg/admindoc"
	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/wire"
)

// With gates held, the node's compliance and gauges are per ring, and
// the relay's own group's ring sets its agents' target.
func TestComplianceWithGates(t *testing.T) {
	t.Parallel()
	n := metricsNode(t, clock.Real{}) // group "hq"
	sha := strings.Repeat("0", 64)
	n.gatesHeld = func() (*wire.Gates, admindoc.SignedGates, bool) {
		return &wire.Gates{Plan: "fleet", Newest: wire.Pin{Version: 5, Length: 1, SHA256: sha}, Rings: []wire.Ring{
			{Name: "canary", Groups: []string{"branch-*"}, Open: wire.Pin{Version: 5, Length: 1, SHA256: sha}},
			{Name: "broad", Groups: []string{"*"}, Open: wire.Pin{Version: 4, Length: 1, SHA256: sha}},
		}}, admindoc.SignedGates{}, true
	}
	for _, o := range []wire.Outcome{
		{Agent: "a", Generation: 4, State: wire.OutcomeInstalled},
		{Agent: "b", Generation: 5, State: wire.OutcomeInstalled},
		{Agent: "c", Generation: 3, State: wire.OutcomeInstalled},
		{Agent: "d", Generation: 4, State: wire.OutcomeFailed, Reason: "exit 2"},
	} {
		if err := n.outcomes.Put(o, "127.0.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	r := n.compliance()
	if len(r.Rings) != 2 || r.Plan != "fleet" || len(r.Groups) != 1 {
		t.Fatalf("%+v", r)
	}
	g := r.Groups[0]
	if g.Name != "hq" || g.Ring != "broad" || g.Target != 4 || g.OnTarget != 2 || g.Behind != 1 || g.Failed != 1 {
		t.Fatalf("hq: %+v", g)
	}
	families, err := n.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range families {
		if f.GetName() != "relayd_compliance_agents" {
			continue
		}
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			got = append(got, fmt.Sprintf("%s %g", strings.Join(ls, ","), m.GetGauge().GetValue()))
		}
	}
	slices.Sort(got)
	want := []string{"ring=broad,state=behind 1", "ring=broad,state=failed 1", "ring=broad,state=not_reporting 0", "ring=broad,state=on_target 2",
		"ring=canary,state=behind 0", "ring=canary,state=failed 0", "ring=canary,state=not_reporting 0", "ring=canary,state=on_target 0"}
	if !slices.Equal(got, want) {
		t.Fatalf("gauges\n%v\nwant\n%v", got, want)
	}
	// The report carries the relay's own agents up.
	if o := n.selfReport(false).Outcomes; o == nil || o.Agents != 4 || len(o.Generations) != 3 {
		t.Fatalf("report outcomes %+v", o)
	}
}
