package e2e

// `relayd compliance` at hq against the agents the rollout test started
// (issue 15, "How it is checked").

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// rollComplianceRow is one group's or one ring's line of `relayd compliance
// --json` (Ring: a group's ring).
type rollComplianceRow struct {
	Name         string `json:"name"`
	Ring         string `json:"ring"`
	Agents       int    `json:"agents"`
	OnTarget     int    `json:"on_target"`
	Behind       int    `json:"behind"`
	Failed       int    `json:"failed"`
	NotReporting int    `json:"not_reporting"`
}

// rollCompliance is what the check reads of `relayd compliance --json`.
type rollCompliance struct {
	Groups []rollComplianceRow `json:"groups"`
	Rings  []rollComplianceRow `json:"rings"`
}

// checkCompliance: every agent of the tree is on gen (its ring's open
// generation); `relayd compliance` at hq-1 counts exactly the agents
// started, per branch and per ring, all on target, in its JSON and in its
// table.
func checkCompliance(t *testing.T, rt *rollTree, gen int) {
	waitInstalled(t, rt.agents, gen, 30*time.Second)
	wantGroup, wantRing := map[string]int{}, map[string]int{}
	for _, a := range rt.agents {
		wantGroup[a.group]++
		wantRing[ringOfBranch[a.group]]++
	}
	var doc rollCompliance
	var raw string
	eventually(t, 30*time.Second, "relayd compliance at hq-1 to count every agent on target", func() error {
		out, stderr, err := runRelayd(t, 10*time.Second, "compliance", "--json", "--admin", rt.hq[0].admin)
		if err != nil {
			return fmt.Errorf("relayd compliance --json: %v: %s", err, stderr)
		}
		raw, doc = out, rollCompliance{}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			return stopErr{Err: fmt.Errorf("relayd compliance --json: %v\n%s", err, out)}
		}
		if err := sameRows(doc.Groups, wantGroup, func(r rollComplianceRow) string { return r.Name }); err != nil {
			return fmt.Errorf("per group: %v\n%s", err, out)
		}
		return sameRows(doc.Rings, wantRing, func(r rollComplianceRow) string { return r.Name })
	})
	for _, r := range doc.Groups {
		if want, ok := ringOfBranch[r.Name]; ok && r.Ring != want {
			t.Errorf("relayd compliance: group %s in ring %q, want %q\n%s", r.Name, r.Ring, want, raw)
		}
	}
	out, stderr, err := runRelayd(t, 10*time.Second, "compliance", "--admin", rt.hq[0].admin)
	if err != nil {
		t.Fatalf("relayd compliance: %v\n%s%s", err, out, stderr)
	}
	for g, n := range wantGroup {
		if !lineHas(out, g, ringOfBranch[g]) || !lineHas(out, g, fmt.Sprint(n)) {
			t.Errorf("relayd compliance: no line with %s, its ring %s and its %d agents:\n%s", g, ringOfBranch[g], n, out)
		}
	}
	t.Logf("relayd compliance at hq-1:\n%s", out)
}

// sameRows checks rows against want (key → agents): the same keys, each
// with that many agents, all on target, none behind, failed or silent.
func sameRows(rows []rollComplianceRow, want map[string]int, key func(rollComplianceRow) string) error {
	got := map[string]int{}
	var bad []string
	for _, r := range rows {
		got[key(r)] = r.Agents
		if r.Agents > 0 && (r.OnTarget != r.Agents || r.Behind+r.Failed+r.NotReporting != 0) {
			bad = append(bad, fmt.Sprintf("%s: %+v", key(r), r))
		}
	}
	var diff []string
	for k, n := range want {
		if got[k] != n {
			diff = append(diff, fmt.Sprintf("%s: %d agents, want %d", k, got[k], n))
		}
	}
	for k, n := range got {
		if _, ok := want[k]; !ok && n != 0 {
			diff = append(diff, fmt.Sprintf("%s: %d agents, want none", k, n))
		}
	}
	sort.Strings(diff)
	if len(diff)+len(bad) > 0 {
		return fmt.Errorf("%s", strings.Join(append(diff, bad...), "; "))
	}
	return nil
}
