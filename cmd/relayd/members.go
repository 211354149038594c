package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/relayd/relayd/pkg/admin"
	"github.com/relayd/relayd/pkg/units"
)

// membersCmd: relayd members — the group as the node sees it.
func membersCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	c, asJSON, err := parseAdminCmd("relayd members", args, stderr, env, nil)
	if err != nil {
		return err
	}
	doc, err := c.Members(ctx)
	return show(stdout, *asJSON, doc, err, func(doc admin.Members) error { return printMembers(stdout, doc) })
}

// printMembers prints /v1/members for people.
func printMembers(stdout io.Writer, doc admin.Members) error {
	fmt.Fprintf(stdout, "group %s, seen from %s\n", doc.Group, doc.Self)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tREADY\tMODE\tGENERATION\tURL\tGOSSIP\tSINCE")
	for _, m := range doc.Members {
		name := m.Name
		if m.Self {
			name += " (self)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%d\t%s\t%s\t%s\n", name, m.State, m.Meta.Ready, m.Meta.Mode,
			m.Meta.Generation, m.Meta.URL, m.Addr, m.LastChange.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

// statusCmd: relayd status — the node's status document.
func statusCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	c, asJSON, err := parseAdminCmd("relayd status", args, stderr, env, nil)
	if err != nil {
		return err
	}
	s, err := c.Status(ctx)
	return show(stdout, *asJSON, s, err, func(s admin.Status) error { return printStatus(stdout, s) })
}

// metadataRow is the status line of the node's TUF metadata: expired
// since when (in capitals: an operator must act), or how fresh.
func metadataRow(md *admin.MetadataStatus) (string, string, string) {
	var parts []string
	if !md.Verified.IsZero() {
		parts = append(parts, "verified "+md.Verified.UTC().Format(time.RFC3339))
	}
	if !md.Expires.IsZero() {
		parts = append(parts, "expires "+md.Expires.UTC().Format(time.RFC3339))
	}
	for _, r := range []string{"expired", "rollback", "not_found", "too_large", "invalid", "unavailable"} {
		if v := md.UpdateFailures[r]; v > 0 {
			parts = append(parts, fmt.Sprintf("%d update failures (%s)", v, r))
		}
	}
	line := strings.Join(parts, ", ")
	if md.ExpiredSince != "" {
		return "METADATA", "%s", "expired since " + md.ExpiredSince + ": serving the objects held; nothing below gets fresh metadata (" + line + ")"
	}
	return "metadata", "%s", line
}

// printStatus prints /v1/status for people.
func printStatus(stdout io.Writer, s admin.Status) error {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	row("node", "%s (group %s, %s mode, relayd %s, up %s)", s.Node, s.Group, s.Mode, s.Version, s.Uptime)
	row("generation", "%d", s.Generation)
	if md := s.Metadata; md != nil {
		row(metadataRow(md))
	}
	if len(s.Upstream) > 0 {
		row("upstream", "%s", strings.Join(s.Upstream, ", "))
		row("parents", "%s", strings.Join(s.Parents, ", "))
	}
	if len(s.Fallback) > 0 {
		row("fallback", "%s", strings.Join(s.Fallback, ", "))
	}
	if t := s.Transfers; t != nil {
		row("transfers", "%d failovers, %d resumes, %d fallbacks", t.Failovers, t.Resumes, t.Fallbacks)
	}
	if w := s.Window; w != nil {
		row("window", "%s", windowLine(*w))
	}
	if u := s.WAN; u != nil && u.ContentBytes+u.WireBytes > 0 {
		row("WAN", "%s on the wire for %s of content (wire/content %.2f)%s", units.Bytes(u.WireBytes), units.Bytes(u.ContentBytes),
			u.WireRatio, kindTraffic(u.Kinds))
	}
	row("in flight", "%d responses being sent; %d agents and %d child relays on /-/events", s.Serving, s.Agents, s.Children)
	if st := s.Store; st != nil {
		quota := "no quota"
		if st.MaxBytes > 0 {
			quota = "quota " + units.Bytes(st.MaxBytes).String()
		}
		row("store", "%d blobs, %s (%s), %d evictions", st.Blobs, units.Bytes(st.Bytes), quota, st.Evictions)
	}
	if ch := s.Cache; ch != nil {
		row("cache", "%d hits, %d misses; %s from upstream, %s from the group", ch.Hits, ch.Misses, units.Bytes(ch.UpstreamBytes), units.Bytes(ch.PeerBytes))
	}
	if sy := s.Sync; sy != nil {
		line := sy.State
		if sy.Target > s.Generation {
			line += fmt.Sprintf(" (toward generation %d)", sy.Target)
		}
		if sy.LastError != "" {
			line += ": " + sy.LastError
		}
		row("sync", "%s", line)
	}
	if l := s.Loops; l != nil {
		if l.Refused > 0 || l.RefusedUpstream > 0 {
			row("LOOPS", "%d refused here (%s), %d refused upstream (%s)", l.Refused, l.LastRefused, l.RefusedUpstream, l.LastUpstream)
		}
		if l.Claimed > 0 {
			row("loop claims", "%d unauthenticated requests refused with 508 (%s): a loop of object requests, or anyone's X-Relay-Path",
				l.Claimed, l.LastClaimed)
		}
	}
	if b := s.Budget; b != nil {
		row("budget", "%d/%d content connections (%d refused); %d streams max, %d per address (%d refused, %d replaced, %d stuck); fd limit %d",
			b.Conns, b.MaxConns, b.ConnsRefused, b.EventsMax, b.EventsPerAddr, b.StreamsRefused, b.StreamsReplaced, b.StreamsStuck, b.NoFile)
	}
	for _, w := range s.Warnings {
		row("WARNING", "%s", w)
	}
	for _, c := range s.Conflicts {
		what := "two group members use this node name"
		if c.Kind == "stream" {
			what = "two child relays with this group/node name on /-/events"
		}
		row("CONFLICT", "%s %s at %s: %s (%d times since %s)", c.Kind, c.Name, strings.Join(c.Addrs, " and "), what, c.Count, c.First.Format(time.RFC3339))
	}
	return tw.Flush()
}

// windowLine is the transfer window in force and what waits, for people:
// "Mon-Fri 08:00-18:00=2MB/s: background at 2 MB/s until 18:00; waiting: 3 background (1.2 GB)".
func windowLine(w admin.UpstreamWindow) string {
	var line string
	switch {
	case w.Schedule == "":
		line = "no upstream-schedule"
	case !w.Limited:
		line = "no rule in force: background traffic uncapped by the window"
	case w.Held:
		line = w.Rule + ": background traffic HELD"
	default:
		line = fmt.Sprintf("%s: background at %s", w.Rule, units.Rate(w.RateBytesPerSec))
	}
	if !w.Until.IsZero() {
		line += " until " + w.Until.Local().Format("Mon 15:04:05")
	}
	var waits []string
	for _, c := range w.Waiting {
		if c.Requests > 0 {
			waits = append(waits, fmt.Sprintf("%d %s (%s to read)", c.Requests, c.Class, units.Bytes(c.Bytes)))
		}
	}
	if len(waits) > 0 {
		line += "; waiting: " + strings.Join(waits, ", ")
	}
	return line
}
