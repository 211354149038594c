// relayd fetch and relayd agent: the agent side, on top of pkg/agent.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/schollz/progressbar/v3"

	"github.com/relayd/relayd/pkg/agent"
	"github.com/relayd/relayd/pkg/units"
)

// agentOpts are the flags shared by fetch and agent sync/watch.
type agentOpts struct {
	relays, root, pubkey, out, id, group string
	logLevel                             string
	include                              []string
	stall, connect, budget               time.Duration
	workers                              int
	quiet                                bool
	catalogMax                           units.Bytes
}

// agentFlagSet registers the agent flags; include and id only where they
// apply.
func agentFlagSet(name string, o *agentOpts, stderr io.Writer, env func(string) (string, bool), sync bool) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // mistakes and --help are worded by flagError
	fs.Usage = func() {}
	def := agent.DefaultConfig()
	fs.StringVar(&o.relays, "relay", envOr(env, "RELAYD_RELAY", ""), "relay base URLs, comma-separated: where to learn the group's relays (env RELAYD_RELAY)")
	rootFlag(fs, &o.root, &o.pubkey, env)
	fs.StringVar(&o.out, "out", envOr(env, "RELAYD_OUT", ""), "output directory (env RELAYD_OUT)")
	fs.DurationVar(&o.stall, "stall-timeout", def.StallTimeout, "move to the next relay when one sends nothing (or under 1 KiB/s) for this long")
	fs.DurationVar(&o.connect, "connect-timeout", def.ConnectTimeout, "TCP/TLS connect timeout per relay")
	fs.DurationVar(&o.budget, "retry-budget", def.RetryBudget, "give up on an object after retrying all relays for this long")
	fs.IntVar(&o.workers, "workers", def.Workers, "objects downloaded at once")
	o.catalogMax = units.Bytes(def.MaxCatalogBytes)
	fs.Var(&o.catalogMax, "catalog-max", "largest metadata file accepted from a relay, e.g. 64MiB; a longer one is refused having cost at most this much memory")
	fs.StringVar(&o.logLevel, "log-level", "warn", "log level on stderr: debug, info, warn or error")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar or per-object lines, only errors and the summary")
	if sync {
		fs.Var(listFlag{&o.include}, "include", "catalog paths to keep, as globs (security/**); repeat or comma-separate; default everything")
		fs.StringVar(&o.id, "id", envOr(env, "RELAYD_AGENT_ID", ""), "agent id shown by relays in /v1/agents (default: the host name) (env RELAYD_AGENT_ID)")
		groupFlag(fs, &o.group, env)
	}
	return fs
}

// groupFlag registers --group: the agent's group, which the signed
// rollout gates map to a ring.
func groupFlag(fs *flag.FlagSet, group *string, env func(string) (string, bool)) {
	fs.StringVar(group, "group", envOr(env, "RELAYD_AGENT_GROUP", ""), "the agent's group (branch-a): with a rollout role in the root, the signed gates map it to a ring and the agent installs what that ring may (default: the last ring) (env RELAYD_AGENT_GROUP)")
}

// rootFlag registers --root (the trusted TUF root every agent command
// verifies with) and --pubkey, which is only there to be refused with
// the way to migrate.
func rootFlag(fs *flag.FlagSet, root, pubkey *string, env func(string) (string, bool)) {
	fs.StringVar(root, "root", envOr(env, "RELAYD_ROOT", ""), "trusted TUF root of the published tree: its 1.root.json, installed with the agent (env RELAYD_ROOT)")
	fs.StringVar(pubkey, "pubkey", envOr(env, "RELAYD_PUBKEY", ""), "gone with the relayd-catalog-v1 format: use --root (see docs/operations.md, Migrating to TUF)")
}

// migrateHint is where an operator still holding a --pubkey learns what
// replaced it.
const migrateHint = `the signed catalog (relayd-catalog-v1) and its --pubkey are replaced by TUF metadata: verify with --root 1.root.json instead (docs/operations.md, "Migrating to TUF")`

// parseInterleaved parses flags that may come after positional arguments
// (relayd fetch --out d a.txt --root r.json b.txt).
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// config turns the flags into an agent.Config, with errors that name the
// flag.
func (o *agentOpts) config() (agent.Config, error) {
	cfg, err := relayConfig(o.relays, o.root, o.pubkey, nil)
	if err != nil {
		return cfg, err
	}
	if o.out == "" {
		return cfg, usageError{errors.New("--out is required: the directory to write to")}
	}
	cfg.Dir, cfg.ID, cfg.Group, cfg.Include = o.out, o.id, o.group, o.include
	cfg.StallTimeout, cfg.ConnectTimeout, cfg.RetryBudget, cfg.Workers = o.stall, o.connect, o.budget, o.workers
	if o.catalogMax <= 0 {
		return cfg, usageError{fmt.Errorf("--catalog-max %s: want more than 0", o.catalogMax)}
	}
	cfg.MaxCatalogBytes = int64(o.catalogMax)
	return cfg, nil
}

// maxRootBytes bounds the trusted root file read from --root: a root
// lists keys and signatures, a few KiB even with many of them.
const maxRootBytes = 1 << 20

// relayConfig is the agent configuration every agent command starts
// from: the relays of --relay (comma-separated base URLs, each also
// passed to check when it is set) and the trusted root of --root. A
// --pubkey (or RELAYD_PUBKEY) is refused with the migration pointer.
func relayConfig(relays, root, pubkey string, check func(*url.URL) error) (agent.Config, error) {
	cfg := agent.DefaultConfig()
	if pubkey != "" {
		return cfg, usageError{fmt.Errorf("--pubkey %s: %s", pubkey, migrateHint)}
	}
	cfg.Relays = splitComma(relays)
	if len(cfg.Relays) == 0 {
		return cfg, usageError{errors.New("--relay is required: the URL of at least one relay (http://relay:20080)")}
	}
	for _, r := range cfg.Relays {
		u, err := agent.ParseBase(r)
		if err != nil {
			return cfg, usageError{fmt.Errorf("--relay %q: not a base URL: want http(s)://host[:port][/path] without query", r)}
		}
		if check != nil {
			if err := check(u); err != nil {
				return cfg, usageError{fmt.Errorf("--relay %s: %w", r, err)}
			}
		}
	}
	if root == "" {
		return cfg, usageError{errors.New("--root is required: the trusted TUF root the metadata is verified with (1.root.json of the published tree)")}
	}
	b, err := readRoot(root)
	if err != nil {
		return cfg, fmt.Errorf("--root: %w", err)
	}
	cfg.Root = b
	return cfg, nil
}

// readRoot reads a trusted root file of at most maxRootBytes.
func readRoot(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRootBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(b) > maxRootBytes {
		return nil, fmt.Errorf("%s: longer than %s: not a TUF root", name, units.FormatBytes(maxRootBytes))
	}
	return b, nil
}

// newAgent builds the agent the options describe, with progress reported
// on a terminal (stderr) or as plain lines (stdout); tune adjusts the
// config before the agent is made.
func (o *agentOpts) newAgent(stdout, stderr io.Writer, tune func(*agent.Config, zerolog.Logger)) (*agent.Agent, agent.Config, *reporter, error) {
	cfg, err := o.config()
	if err != nil {
		return nil, cfg, nil, err
	}
	log, err := o.logger(stderr)
	if err != nil {
		return nil, cfg, nil, err
	}
	rep := newReporter(stderr, o.quiet)
	if !rep.tty {
		rep.out = stdout
	}
	rep.hook(&cfg)
	if tune != nil {
		tune(&cfg, log)
	}
	a, err := agent.New(cfg, log)
	return a, cfg, rep, err
}

// logger logs to stderr in the console format, at --log-level.
func (o *agentOpts) logger(stderr io.Writer) (zerolog.Logger, error) {
	log, err := newLogger(logConfig{Level: o.logLevel, Format: "console"}, stderr)
	if err != nil {
		return log, usageError{fmt.Errorf("--%w", err)}
	}
	return log, nil
}

// reporter shows a download's progress: a bar on a terminal, a line per
// object otherwise.
type reporter struct {
	out   io.Writer
	tty   bool
	quiet bool
	mu    sync.Mutex
	bar   *progressbar.ProgressBar
}

func newReporter(out io.Writer, quiet bool) *reporter {
	return &reporter{out: out, tty: isTerminal(out), quiet: quiet}
}

// hook sets the progress callbacks of cfg.
func (r *reporter) hook(cfg *agent.Config) {
	if r.quiet {
		return
	}
	cfg.OnPlan = func(objects int, bytes int64) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.tty && bytes > 0 {
			r.bar = progressbar.NewOptions64(bytes, progressbar.OptionSetWriter(r.out),
				progressbar.OptionSetDescription(fmt.Sprintf("%d objects", objects)), progressbar.OptionShowBytes(true),
				progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
			return
		}
		if !r.tty && objects > 0 {
			fmt.Fprintf(r.out, "fetching %d objects, %s\n", objects, units.FormatBytes(bytes))
		}
	}
	cfg.OnBytes = func(n int64) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.bar != nil {
			_ = r.bar.Add64(n)
		}
	}
	cfg.OnObject = func(path string, size int64, err error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.tty {
			if err != nil && r.bar != nil {
				_ = r.bar.Clear()
				fmt.Fprintf(r.out, "failed %s: %v\n", path, err)
			}
			return
		}
		if err != nil {
			fmt.Fprintf(r.out, "failed %s: %v\n", path, err)
			return
		}
		fmt.Fprintf(r.out, "fetched %s (%s, sha256 verified)\n", path, units.FormatBytes(size))
	}
}

// done ends the bar.
func (r *reporter) done() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bar != nil {
		_ = r.bar.Finish()
		r.bar = nil
	}
}

func summary(res agent.Result, st agent.Stats, took time.Duration) string {
	s := fmt.Sprintf("generation %d: %d fetched (%s), %d already up to date", res.Generation, res.Downloaded,
		units.FormatBytes(res.Bytes), res.UpToDate)
	if res.Failed > 0 {
		s += fmt.Sprintf(", %d failed", res.Failed)
	}
	if st.Failovers > 0 || st.Resumes > 0 || st.Restarts > 0 {
		s += fmt.Sprintf("; %d failovers, %d resumed, %d restarted", st.Failovers, st.Resumes, st.Restarts)
	}
	return s + fmt.Sprintf(" in %s", took.Round(time.Millisecond))
}

const fetchSynopsis = "relayd fetch --relay URL[,URL…] --root 1.root.json --out DIR [flags] PATH…"

// fetchCmd: relayd fetch --relay URL[,URL…] --root 1.root.json --out DIR PATH…
func fetchCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var o agentOpts
	fs := agentFlagSet("relayd fetch", &o, stderr, env, false)
	paths, err := parseInterleaved(fs, args)
	if err := flagError(fs, err, stderr, fetchSynopsis); err != nil {
		return err
	}
	if len(paths) == 0 {
		return usageError{errors.New("usage: " + fetchSynopsis + ": name at least one catalog path")}
	}
	a, _, rep, err := o.newAgent(stdout, stderr, nil)
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := a.Fetch(ctx, paths...)
	rep.done()
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, summary(res, a.Stats(), time.Since(start)))
	return nil
}
