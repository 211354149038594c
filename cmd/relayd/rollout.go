// relayd rollout: the staged rollout at the origin (issue 15) through
// the admin API: status, promote, halt, resume.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/relayd/relayd/pkg/admin"
)

const rolloutUsage = `usage: relayd rollout status|promote|halt|resume [flags]
  status                 the plan, the gates and each ring's progress (a relay: the gates it holds)
  promote [RING]         open the next ring (or RING and every ring before it) at the newest generation
  halt --reason R        halt the rollout: no ring opens until it is resumed
  resume                 resume a halted rollout (the failures seen so far are acknowledged)`

// rolloutCmd is `relayd rollout …` over /v1/rollout.
func rolloutCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	subs := []string{"status", "promote", "halt", "resume"}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stderr, rolloutUsage)
		if len(args) > 0 {
			return flag.ErrHelp
		}
		return usageError{errors.New("relayd rollout: want status, promote, halt or resume")}
	}
	sub, args := args[0], args[1:]
	name := "relayd rollout " + sub
	var reason string
	var extra func(*flag.FlagSet)
	switch sub {
	case "status", "promote", "resume":
	case "halt":
		extra = func(fs *flag.FlagSet) {
			fs.StringVar(&reason, "reason", "", "why (shown in the gates, status and logs)")
		}
	default:
		msg := fmt.Sprintf("unknown rollout command %q", sub)
		if s := nearest(sub, subs); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", "relayd rollout "+s)
		}
		return usageError{errors.New(msg + `; see "relayd rollout --help"`)}
	}
	// promote RING: the ring may come before the flags or after them.
	var rest []string
	if sub == "promote" && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		rest, args = args[:1], args[1:]
	}
	c, asJSON, after, err := parseAdminArgs(name, args, stderr, env, extra)
	if err != nil {
		return err
	}
	rest = append(rest, after...)
	if len(rest) > 0 && (sub != "promote" || len(rest) > 1) {
		return usageError{fmt.Errorf("%s: unexpected arguments %q", name, rest)}
	}
	var st admin.RolloutStatus
	switch sub {
	case "status":
		st, err = c.Rollout(ctx)
	case "promote":
		ring := ""
		if len(rest) == 1 {
			ring = rest[0]
		}
		st, err = c.Promote(ctx, ring)
	case "halt":
		st, err = c.Halt(ctx, reason)
	case "resume":
		st, err = c.Resume(ctx)
	}
	return show(stdout, *asJSON, st, err, func(st admin.RolloutStatus) error { printRollout(stdout, st, time.Now()); return nil })
}

// printRollout prints the rollout document as a table.
func printRollout(w io.Writer, st admin.RolloutStatus, now time.Time) {
	switch {
	case st.Gates == nil && st.ReadOnly:
		fmt.Fprintln(w, "no rollout gates held (the tree has no rollout plan, or none reached this relay yet)")
		return
	case st.Gates == nil:
		fmt.Fprintf(w, "plan %s: nothing published yet\n", shown(st.Plan))
		return
	}
	g := st.Gates
	head := "plan " + shown(g.Plan)
	if st.ReadOnly {
		head += " (gates held by this relay)"
	}
	fmt.Fprintf(w, "%s, newest generation %d", head, g.Newest.Version)
	if st.Signed.Version > 0 {
		fmt.Fprintf(w, ", gates version %d expiring %s", st.Signed.Version, st.Signed.Expires.Local().Format(time.DateTime))
	}
	fmt.Fprintln(w)
	if g.Halted {
		fmt.Fprintf(w, "HALTED: %s\n", shown(g.Reason))
	}
	if st.Problem != "" {
		fmt.Fprintf(w, "PROBLEM: %s\n", shown(st.Problem))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(st.Rings) == 0 { // a relay: the signed gates only
		fmt.Fprintln(tw, "RING\tGROUPS\tOPEN\tSINCE")
		for _, r := range g.Rings {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", shown(r.Name), shown(strings.Join(r.Groups, ",")), r.Open.Version, ago(r.Since, now))
		}
		tw.Flush()
		return
	}
	fmt.Fprintln(tw, "RING\tGROUPS\tOPEN\tSINCE\tREPORTING\tINSTALLED\tFAILED\tGATE\tSOAK\tNEXT OPENS\tWAITS FOR")
	for _, r := range st.Rings {
		next := "-"
		if !r.NextOpens.IsZero() {
			next = r.NextOpens.Local().Format(time.TimeOnly)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%d\t≥%d, ≥%.0f%%, ≤%.0f%% failed\t%s\t%s\t%s\n", shown(r.Name), shown(strings.Join(r.Groups, ",")),
			r.Open, ago(r.Since, now), r.Counts.Reporting, r.Counts.Installed, r.Counts.Failed,
			r.Gate.MinAgents, 100*r.Gate.Success, 100*r.Gate.MaxFailures, r.Soak, next, shown(r.Why))
	}
	tw.Flush()
}

// ago is how long before now t was ("-" for zero).
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return now.Sub(t).Truncate(time.Second).String() + " ago"
}
