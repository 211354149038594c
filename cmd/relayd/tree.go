package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/relayd/relayd/pkg/admin"
)

// treeCmd is `relayd tree`: the groups below this relay, as reported.
func treeCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	c, asJSON, err := parseAdminCmd("relayd tree", args, stderr, env, nil)
	if err != nil {
		return err
	}
	root, err := c.Tree(ctx)
	return show(stdout, *asJSON, root, err, func(root admin.GroupView) error { return printTree(stdout, root) })
}

// printTree prints /v1/tree for people.
func printTree(stdout io.Writer, root admin.GroupView) error {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP / NODE\tMODE\tGENERATION\tLAG\tHEALTH\tMETADATA\tAGENTS\tHITS\tMISSES\tREPORTED\tURL")
	printGroup(tw, root, 0)
	return tw.Flush()
}

func printGroup(tw io.Writer, g admin.GroupView, depth int) {
	indent := strings.Repeat("  ", depth)
	fmt.Fprintf(tw, "%s%s\t\t\t\t\t\t\t\t\t\t\n", indent, shown(g.Group))
	for _, m := range g.Members {
		health := memberHealth(m.Health, m.Ready, m.Problem)
		hits, misses := "-", "-"
		if m.Cache != nil {
			hits, misses = fmt.Sprint(m.Cache.Hits), fmt.Sprint(m.Cache.Misses)
		}
		lag := fmt.Sprint(m.Lag)
		if m.Ahead {
			lag = "ahead" // claims a newer generation than this relay serves
		}
		age := m.Age
		if age == "" {
			age = "first hand"
		} else {
			age += " ago"
		}
		fmt.Fprintf(tw, "%s  %s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", indent, shown(m.Node), shown(m.Mode), m.Generation, lag, health,
			metadataColumn(m), m.Agents, hits, misses, shown(age), shown(m.URL))
	}
	for _, c := range g.Children {
		printGroup(tw, c, depth+1)
	}
}

// metadataColumn is the METADATA column: "expired since …" once the
// relay's metadata has expired (it serves what it holds), else how old
// it was when the relay reported ("verified 3m ago"), "-" for a relay
// that verifies none.
func metadataColumn(m admin.MemberView) string {
	switch {
	case m.ExpiredSince != "":
		return "EXPIRED since " + shown(m.ExpiredSince)
	case m.MetadataAge != "":
		return "verified " + shown(m.MetadataAge) + " ago"
	case !m.MetadataExpires.IsZero():
		return "expires " + m.MetadataExpires.UTC().Format("2006-01-02T15:04Z")
	}
	return "-"
}

// memberHealth is the HEALTH column: what the relay showing the tree says
// (ok, not ready, stale, gone: from the report's age), with the relay's
// own problem when not ready. A relay too old to say decides from
// readiness alone.
func memberHealth(health string, ready bool, problem string) string {
	switch {
	case health == admin.HealthStale || health == admin.HealthGone || health == admin.HealthOK:
		return health
	case ready:
		return admin.HealthOK
	case problem != "":
		return "NOT READY: " + shown(problem)
	}
	return "NOT READY"
}

// shown is s as the terminal may show it: as is when every rune prints,
// else quoted with escapes (a report's strings come from other relays:
// no terminal escapes, tabs or bidi overrides reach the screen raw).
func shown(s string) string {
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return strconv.QuoteToASCII(s)
		}
	}
	return s
}
