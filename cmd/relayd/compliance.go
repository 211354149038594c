package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/relayd/relayd/pkg/admin"
	"github.com/relayd/relayd/pkg/admindoc"
)

// complianceCmd is `relayd compliance`: how many agents of this relay's
// subtree are on their target generation, per ring and per group.
func complianceCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	c, asJSON, err := parseAdminCmd("relayd compliance", args, stderr, env, nil)
	if err != nil {
		return err
	}
	doc, err := c.Compliance(ctx)
	return show(stdout, *asJSON, doc, err, func(doc admin.Compliance) error { return printCompliance(stdout, doc) })
}

// printCompliance prints /v1/compliance for people: the rollout line,
// a table of rings (with gates), a table of groups, the total.
func printCompliance(stdout io.Writer, doc admin.Compliance) error {
	switch {
	case doc.Plan == "":
		fmt.Fprintf(stdout, "no rollout gates: every group's target is the newest generation, %d\n", doc.Newest)
	case doc.Halted:
		fmt.Fprintf(stdout, "rollout %s: HALTED (%s); newest generation %d\n", shown(doc.Plan), shown(doc.Reason), doc.Newest)
	default:
		fmt.Fprintf(stdout, "rollout %s: newest generation %d\n", shown(doc.Plan), doc.Newest)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if len(doc.Rings) > 0 {
		fmt.Fprintln(tw, "\nRING\tOPEN\tGROUPS\t"+countsHeader)
		for _, r := range doc.Rings {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", shown(r.Name), openColumn(r.Open), r.Groups, countsRow(r.ComplianceCounts))
		}
	}
	fmt.Fprintln(tw, "\nGROUP\tRING\tTARGET\tRELAYS\t"+countsHeader)
	for _, g := range doc.Groups {
		ring := g.Ring
		if ring == "" {
			ring = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", shown(g.Name), shown(ring), openColumn(g.Target), g.Relays, countsRow(g.ComplianceCounts))
	}
	fmt.Fprintf(tw, "TOTAL\t\t\t\t%s\n", countsRow(doc.Total))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(doc.Total.Reasons) > 0 {
		fmt.Fprintln(stdout, "\nfailures:")
		for _, r := range doc.Total.Reasons {
			fmt.Fprintf(stdout, "  %d × %s\n", r.Count, shown(r.Reason))
		}
	}
	return nil
}

const countsHeader = "AGENTS\tON TARGET\tBEHIND\tFAILED\tNOT REPORTING\tOLDEST REPORT"

// countsRow is the counts' columns of countsHeader.
func countsRow(c admindoc.ComplianceCounts) string {
	oldest := "-"
	if !c.OldestReport.IsZero() {
		oldest = (time.Duration(c.OldestAgeSeconds) * time.Second).String() + " ago"
	}
	return strings.Join([]string{fmt.Sprint(c.Agents), pct(c.OnTarget, c.Agents), fmt.Sprint(c.Behind), fmt.Sprint(c.Failed),
		fmt.Sprint(c.NotReporting), oldest}, "\t")
}

// pct is "n (p %)" of all; "n" when all is 0.
func pct(n, all int) string {
	if all == 0 {
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%d (%d %%)", n, n*100/all)
}

// openColumn is a generation, "-" for none (a ring not open yet).
func openColumn(g uint64) string {
	if g == 0 {
		return "-"
	}
	return fmt.Sprint(g)
}
