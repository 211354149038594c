package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/agent"
	"github.com/relayd/relayd/pkg/wire"
)

const agentUsage = `usage:
  relayd agent sync  --relay URL[,URL…] --root 1.root.json --out DIR [--include GLOB]… [--group G]
      bring DIR up to the newest verified TUF metadata (only what changed), then exit;
      with a rollout role in the root, to the generation the signed gates open for G's ring
  relayd agent watch --relay URL[,URL…] --root 1.root.json --out DIR [--include GLOB]… [--group G] [--id ID] [--sync-jitter 2s]
      stay connected to a relay (GET /-/events) and sync on every new generation,
      at a random moment within --sync-jitter of the announcement
  both: [--exec CMD [--exec-timeout 10m]]
      after each verified sync run CMD (sh -c; env RELAYD_GENERATION, RELAYD_DIR) and report
      to the relays installed (exit 0) or failed ("exit N: first line of stderr");
      without --exec a completed sync reports installed (POST /-/outcome)
`

// agentCmd: relayd agent sync|watch.
func agentCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	if len(args) == 0 || (args[0] != "sync" && args[0] != "watch") {
		fmt.Fprint(stderr, agentUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil
		}
		return usageError{errors.New("relayd agent: want sync or watch")}
	}
	sub := args[0]
	var o agentOpts
	fs := agentFlagSet("relayd agent "+sub, &o, stderr, env, true)
	jitter := agent.DefaultConfig().SyncJitter
	x := agent.Exec{Command: envOr(env, "RELAYD_AGENT_EXEC", ""), Timeout: agent.DefaultExecTimeout, Output: stderr}
	fs.StringVar(&x.Command, "exec", x.Command, "after each verified sync, run this shell command (env RELAYD_GENERATION, RELAYD_DIR) and report installed (exit 0) or failed to the relays; without it a completed sync reports installed (env RELAYD_AGENT_EXEC)")
	if v, ok := env("RELAYD_AGENT_EXEC_TIMEOUT"); ok && v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return usageError{fmt.Errorf("RELAYD_AGENT_EXEC_TIMEOUT %q: %w", v, err)}
		}
		x.Timeout = d
	}
	fs.DurationVar(&x.Timeout, "exec-timeout", x.Timeout, "kill the --exec command after this long and report it failed (env RELAYD_AGENT_EXEC_TIMEOUT)")
	if sub == "watch" {
		fs.DurationVar(&jitter, "sync-jitter", jitter, "after an announcement, start the sync at a random moment within this window, so that a relay's agents do not all ask at once (0 = at once)")
	}
	if err := parseFlags(fs, args[1:], stderr, "relayd agent "+sub+" --relay URL[,URL…] --root 1.root.json --out DIR [--include GLOB]… [flags]"); err != nil {
		return err
	}
	if x.Timeout <= 0 {
		return usageError{fmt.Errorf("--exec-timeout %s: want more than 0", x.Timeout)}
	}
	if jitter < 0 {
		return usageError{fmt.Errorf("--sync-jitter %s: want 0 or more", jitter)}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("relayd agent %s takes no arguments, got %q (paths are chosen with --include)", sub, fs.Args())}
	}
	a, cfg, rep, err := o.newAgent(stdout, stderr, func(cfg *agent.Config, log zerolog.Logger) {
		if sub == "watch" {
			cfg.OnAnnounce = func(g uint64) { log.Debug().Uint64("generation", g).Msg("announced") }
			cfg.SyncJitter = jitter
		}
	})
	if err != nil {
		return err
	}
	if sub == "sync" {
		start := time.Now()
		res, err := a.Sync(ctx)
		rep.done()
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, summary(res, a.Stats(), time.Since(start)))
		return install(ctx, a, res, x, stdout)
	}
	fmt.Fprintf(stdout, "watching as %q; relays %v\n", a.ID(), cfg.Relays)
	w := watchReport{last: time.Now()}
	return a.Watch(ctx, func(res agent.Result, err error) {
		rep.done()
		fmt.Fprintln(stdout, w.line(res, err, a.Stats(), time.Now()))
		if err == nil {
			_ = install(ctx, a, res, x, stdout) // said on stdout; the watch goes on
		}
	})
}

// install runs the --exec step after a verified sync and reports its
// outcome, saying both on stdout. An install that failed is an error
// (exit status 1 of relayd agent sync); a report no relay took is said,
// not an error (a relay with outcome-agents 0 takes none).
func install(ctx context.Context, a *agent.Agent, res agent.Result, x agent.Exec, stdout io.Writer) error {
	state, reason, err := a.Install(ctx, res, x)
	switch {
	case state == "" && err == nil:
		return nil // nothing new since the last install
	case reason != "":
		fmt.Fprintf(stdout, "install of generation %d failed: %s\n", res.Generation, reason)
	case x.Command != "":
		fmt.Fprintf(stdout, "installed generation %d\n", res.Generation)
	}
	if err != nil {
		fmt.Fprintf(stdout, "outcome %s of generation %d not reported: %v\n", state, res.Generation, err)
	}
	if state == wire.OutcomeFailed {
		return fmt.Errorf("install of generation %d failed: %s", res.Generation, reason)
	}
	return nil
}

// watchReport words the syncs of relayd agent watch, one line each, with
// what that sync took: the agent's counters since the previous one.
type watchReport struct {
	prev agent.Stats // the counters when the previous sync ended
	last time.Time   // when it ended, or the watch began
}

// line describes a sync that ended at now with the agent's counters at st.
func (w *watchReport) line(res agent.Result, err error, st agent.Stats, now time.Time) string {
	since, took := st.Sub(w.prev), now.Sub(w.last)
	w.prev, w.last = st, now
	if err != nil {
		return fmt.Sprintf("sync to generation %d failed: %v", res.Generation, err)
	}
	return "synced " + summary(res, since, took)
}
