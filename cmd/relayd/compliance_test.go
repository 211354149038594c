package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/admin"
	"github.com/relayd/relayd/pkg/admindoc"
	"github.com/relayd/relayd/pkg/wire"
)

// The table shows the halt, each ring with its open generation (a ring
// not open yet as "-"), each group with its ring and target, the total
// and the failures; a name that does not print is quoted.
func TestPrintComplianceWithRings(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	counts := func(agents, on, failed int) admindoc.ComplianceCounts {
		return admindoc.ComplianceCounts{Agents: agents, Reporting: agents, OnTarget: on, Failed: failed, Behind: agents - on - failed,
			OldestReport: now.Add(-90 * time.Second), OldestAgeSeconds: 90}
	}
	doc := admin.Compliance{Generated: now, Plan: "fleet", Halted: true, Reason: "ring canary: 3 of 10 failed", Newest: 8,
		Total: counts(30, 17, 3),
		Rings: []admindoc.ComplianceRing{{Name: "canary", Open: 8, Groups: 1, ComplianceCounts: counts(10, 7, 3)},
			{Name: "broad", Open: 0, Groups: 1, ComplianceCounts: counts(20, 10, 0)}},
		Groups: []admindoc.ComplianceGroup{{Name: "branch-a", Ring: "canary", Target: 8, Relays: 2, ComplianceCounts: counts(10, 7, 3)},
			{Name: "evil\x1b[2J", Ring: "broad", Target: 0, Relays: 1, ComplianceCounts: counts(20, 10, 0)}}}
	doc.Total.Reasons = []wire.Reason{{Reason: "exit 1: disk full", Count: 3}}
	var out bytes.Buffer
	if err := printCompliance(&out, doc); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"rollout fleet: HALTED (ring canary: 3 of 10 failed); newest generation 8", "RING", "canary  8", "broad   -",
		"branch-a", "7 (70 %)", `"evil\x1b[2J"`, "1m30s ago", "3 × exit 1: disk full", "TOTAL"} {
		if !strings.Contains(s, want) {
			t.Errorf("no %q in\n%s", want, s)
		}
	}
	if strings.Contains(s, "\x1b") {
		t.Errorf("a terminal escape reached the table:\n%q", s)
	}
}
