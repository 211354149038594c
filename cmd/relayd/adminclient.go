package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/relayd/relayd/pkg/mirror"
	"github.com/relayd/relayd/pkg/units"
)

// adminClient talks to a node's admin API.
type adminClient struct {
	base  string
	token string
	http  *http.Client
}

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
func parseAdminCmd(name string, args []string, stderr io.Writer, env func(string) (string, bool), extra func(*flag.FlagSet)) (*adminClient, *bool, error) {
	c, asJSON, rest, err := parseAdminArgs(name, args, stderr, env, extra)
	if err == nil && len(rest) > 0 {
		return nil, nil, usageError{fmt.Errorf("%s takes no arguments, got %q", name, rest)}
	}
	return c, asJSON, err
}

// parseAdminArgs is parseAdminCmd for commands that take arguments: it
// returns them.
func parseAdminArgs(name string, args []string, stderr io.Writer, env func(string) (string, bool), extra func(*flag.FlagSet)) (*adminClient, *bool, []string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin, tok, asJSON := adminFlags(fs, env)
	if extra != nil {
		extra(fs)
	}
	if err := parseFlags(fs, args, stderr, name+" [flags]"); err != nil {
		return nil, nil, nil, err
	}
	c, err := newAdminClient(*admin, *tok)
	return c, asJSON, fs.Args(), err
}

func newAdminClient(base, tokenFile string) (*adminClient, error) {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	c := &adminClient{base: strings.TrimRight(base, "/"), http: &http.Client{Timeout: 30 * time.Second}}
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("admin token: %w", err)
		}
		c.token = strings.TrimSpace(string(b))
	}
	return c, nil
}

// show GETs path: with asJSON it prints the document as it came and
// reports done; otherwise it decodes it into doc for the caller to print.
func (c *adminClient) show(ctx context.Context, path string, asJSON bool, stdout io.Writer, doc any) (done bool, err error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, path, nil, &raw); err != nil {
		return false, err
	}
	if asJSON {
		_, err := stdout.Write(append(raw, '\n'))
		return true, err
	}
	if err := json.Unmarshal(raw, doc); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return false, nil
}

// do sends a request and decodes a JSON answer into out (if not nil).
func (c *adminClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin API %s: %w (is relayd running? --admin)", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct{ Error, Code string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s %s: %s (%s)", method, path, e.Error, resp.Status)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		if raw, ok := out.(*json.RawMessage); ok {
			*raw = b
			return nil
		}
		return json.Unmarshal(b, out)
	}
	return nil
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
	var before mirror.Progress
	if *follow {
		if err := c.do(ctx, http.MethodGet, "/v1/sync", nil, &before); err != nil {
			return err
		}
	}
	if !*status {
		if err := c.do(ctx, http.MethodPost, "/v1/sync", nil, nil); err != nil {
			return err
		}
	}
	if !*follow {
		var p mirror.Progress
		if done, err := c.show(ctx, "/v1/sync", *asJSON, stdout, &p); done || err != nil {
			return err
		}
		printProgress(stdout, p)
		return nil
	}
	return followSync(ctx, c, stdout, *asJSON, before.Finished)
}

func printProgress(w io.Writer, p mirror.Progress) {
	fmt.Fprintf(w, "state %s, live generation %d", p.State, p.Generation)
	if p.Target != 0 && p.Target != p.Generation {
		fmt.Fprintf(w, ", syncing to %d", p.Target)
	}
	fmt.Fprintf(w, ": %d/%d objects, %s/%s", p.ObjectsDone, p.ObjectsTotal, units.FormatBytes(p.BytesDone), units.FormatBytes(p.BytesTotal))
	if p.State == mirror.StateSyncing && p.RateBytesPerSec > 0 {
		fmt.Fprintf(w, ", %s/s, ETA %s", units.FormatBytes(int64(p.RateBytesPerSec)), (time.Duration(p.ETASeconds) * time.Second).String())
	}
	if p.Errors > 0 || p.LastError != "" {
		fmt.Fprintf(w, ", %d errors (last: %s)", p.Errors, p.LastError)
	}
	fmt.Fprintln(w)
}

// followSync polls the progress until a sync that finished after since
// ends; a progress bar on a terminal, a line per change otherwise.
func followSync(ctx context.Context, c *adminClient, stdout io.Writer, asJSON bool, since time.Time) error {
	tty := isTerminal(stdout)
	var bar *progressbar.ProgressBar
	last := ""
	wait := 20 * time.Millisecond
	for {
		var p mirror.Progress
		if err := c.do(ctx, http.MethodGet, "/v1/sync", nil, &p); err != nil {
			return err
		}
		ended := p.State != mirror.StateSyncing && p.Finished.After(since)
		switch {
		case !asJSON && tty && p.BytesTotal > 0 && p.State == mirror.StateSyncing:
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
			if p.State == mirror.StateFailed {
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
