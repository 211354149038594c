// relayd sync: start a mirror's sync and follow it.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/relayd/relayd/pkg/admin"
	"github.com/relayd/relayd/pkg/units"
)

// syncCmd: relayd sync [--follow] — start a sync now and, with --follow,
// show its progress until it ends.
func syncCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var follow, status *bool
	c, asJSON, err := parseAdminCmd("relayd sync", args, stderr, env, func(fs *flag.FlagSet) {
		follow = fs.Bool("follow", false, "show progress until the sync ends")
		status = fs.Bool("status", false, "only show the progress of the current or last sync")
	})
	if err != nil {
		return err
	}
	// --follow waits for a sync that ends after this one did.
	var before admin.SyncProgress
	if *follow {
		if before, err = c.SyncProgress(ctx); err != nil {
			return explain(err)
		}
	}
	if !*status {
		if err := c.Sync(ctx); err != nil {
			return explain(err)
		}
	}
	if !*follow {
		p, err := c.SyncProgress(ctx)
		return show(stdout, *asJSON, p, err, func(p admin.SyncProgress) error { printProgress(stdout, p); return nil })
	}
	return followSync(ctx, c, stdout, *asJSON, before.Finished)
}

func printProgress(w io.Writer, p admin.SyncProgress) {
	fmt.Fprintf(w, "state %s, live generation %d", p.State, p.Generation)
	if p.Target != 0 && p.Target != p.Generation {
		fmt.Fprintf(w, ", syncing to %d", p.Target)
	}
	fmt.Fprintf(w, ": %d/%d objects, %s/%s", p.ObjectsDone, p.ObjectsTotal, units.FormatBytes(p.BytesDone), units.FormatBytes(p.BytesTotal))
	if p.State == admin.SyncSyncing && p.RateBytesPerSec > 0 {
		fmt.Fprintf(w, ", %s/s, ETA %s", units.FormatBytes(int64(p.RateBytesPerSec)), (time.Duration(p.ETASeconds) * time.Second).String())
	}
	if p.Errors > 0 || p.LastError != "" {
		fmt.Fprintf(w, ", %d errors (last: %s)", p.Errors, p.LastError)
	}
	fmt.Fprintln(w)
}

// followSync polls the progress until a sync that finished after since
// ends; a progress bar on a terminal, a line per change otherwise.
func followSync(ctx context.Context, c *admin.Client, stdout io.Writer, asJSON bool, since time.Time) error {
	tty := isTerminal(stdout)
	var bar *progressbar.ProgressBar
	last := ""
	wait := 20 * time.Millisecond
	for {
		p, err := c.SyncProgress(ctx)
		if err != nil {
			return explain(err)
		}
		ended := p.State != admin.SyncSyncing && p.Finished.After(since)
		switch {
		case !asJSON && tty && p.BytesTotal > 0 && p.State == admin.SyncSyncing:
			if bar == nil {
				bar = progressbar.NewOptions64(p.BytesTotal, progressbar.OptionSetWriter(stdout),
					progressbar.OptionSetDescription(fmt.Sprintf("generation %d", p.Target)),
					progressbar.OptionShowBytes(true), progressbar.OptionShowCount(), progressbar.OptionThrottle(200*time.Millisecond))
			}
			_ = bar.Set64(p.BytesDone)
		case bar == nil:
			// A line when something changed; once a bar is up, its end
			// prints the last line.
			var b bytes.Buffer
			if asJSON {
				if err := printJSON(&b, p); err != nil {
					return err
				}
			} else {
				printProgress(&b, p)
			}
			if b.String() != last {
				fmt.Fprint(stdout, b.String())
				last = b.String()
			}
		}
		if ended {
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(stdout)
				printProgress(stdout, p)
			}
			if p.State == admin.SyncFailed {
				return errors.New("sync failed: " + p.LastError)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		// Quick at first (a sync with nothing to do ends in milliseconds),
		// then every half second.
		wait = min(2*wait, 500*time.Millisecond)
	}
}
