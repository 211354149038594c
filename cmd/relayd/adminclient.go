package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/relayd/relayd/pkg/admin"
	"github.com/relayd/relayd/pkg/units"
)

// adminFlags adds --admin, --admin-token-file and --json to fs.
func adminFlags(fs *flag.FlagSet, env func(string) (string, bool)) (*string, *string, *bool) {
	def := "http://127.0.0.1:20090"
	if v, ok := env("RELAYD_ADMIN_URL"); ok {
		def = v
	}
	tokDef, _ := env("RELAYD_ADMIN_TOKEN_FILE")
	return fs.String("admin", def, "admin API URL (env RELAYD_ADMIN_URL)"),
		fs.String("admin-token-file", tokDef, "file with the admin bearer token (env RELAYD_ADMIN_TOKEN_FILE)"),
		fs.Bool("json", false, "print JSON for scripts")
}

// parseAdminCmd parses an admin client command's flags (the common ones
// and those extra registers) and connects the client.
func parseAdminCmd(name string, args []string, stderr io.Writer, env func(string) (string, bool), extra func(*flag.FlagSet)) (*admin.Client, *bool, error) {
	c, asJSON, rest, err := parseAdminArgs(name, args, stderr, env, extra)
	if err == nil && len(rest) > 0 {
		return nil, nil, usageError{fmt.Errorf("%s takes no arguments, got %q", name, rest)}
	}
	return c, asJSON, err
}

// parseAdminArgs is parseAdminCmd for commands that take arguments: it
// returns them.
func parseAdminArgs(name string, args []string, stderr io.Writer, env func(string) (string, bool), extra func(*flag.FlagSet)) (*admin.Client, *bool, []string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	base, tok, asJSON := adminFlags(fs, env)
	if extra != nil {
		extra(fs)
	}
	if err := parseFlags(fs, args, stderr, name+" [flags]"); err != nil {
		return nil, nil, nil, err
	}
	c, err := newAdminClient(*base, *tok)
	return c, asJSON, fs.Args(), err
}

// newAdminClient is the admin API client of --admin and
// --admin-token-file.
func newAdminClient(base, tokenFile string) (*admin.Client, error) {
	token := ""
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("admin token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	return admin.NewClient(base, token, &http.Client{Timeout: 30 * time.Second}), nil
}

// explain adds to an error that is not the node's answer the likely
// cause: no node listening at --admin.
func explain(err error) error {
	var api *admin.APIError
	if err == nil || errors.As(err, &api) || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w (is relayd running? --admin)", err)
}

// show prints doc, the answer of an admin call that returned err: as JSON
// for scripts with asJSON, otherwise with print.
func show[T any](stdout io.Writer, asJSON bool, doc T, err error, print func(T) error) error {
	if err != nil {
		return explain(err)
	}
	if asJSON {
		return printJSON(stdout, doc)
	}
	return print(doc)
}

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
