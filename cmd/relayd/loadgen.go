// relayd loadgen: the flags of pkg/loadgen, N simulated agents in one
// process against relays on loopback.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/relayd/relayd/pkg/agent"
	"github.com/relayd/relayd/pkg/loadgen"
)

// loadOpts are the flags of relayd loadgen.
type loadOpts struct {
	loadgen.Options
	relays, root, pubkey   string
	group                  string
	include                []string
	stall, jitter          time.Duration
	allowRemote            bool
	streamsOnly            bool
	localAddr              string
	cpuProfile, memProfile string
}

// loadgenCmd: relayd loadgen --relay URL,… --agents N --duration D --root 1.root.json [--watch] [--paths …].
func loadgenCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var o loadOpts
	fs := flag.NewFlagSet("relayd loadgen", flag.ContinueOnError)
	fs.StringVar(&o.relays, "relay", envOr(env, "RELAYD_RELAY", ""), "relay base URLs, comma-separated (loopback only unless --allow-remote) (env RELAYD_RELAY)")
	rootFlag(fs, &o.root, &o.pubkey, env)
	fs.IntVar(&o.Agents, "agents", 100, fmt.Sprintf("simulated agents (at most %d)", loadgen.MaxAgents))
	fs.DurationVar(&o.Duration, "duration", 30*time.Second, fmt.Sprintf("run this long (at most %s)", loadgen.MaxDuration))
	fs.BoolVar(&o.Watch, "watch", false, "each agent keeps an event stream open and syncs on every announcement")
	fs.Var(listFlag{&o.Paths}, "paths", "catalog paths each agent fetches once (without --watch); default: sync --include")
	fs.Var(listFlag{&o.include}, "include", "globs each agent syncs (default everything)")
	fs.StringVar(&o.Out, "out", "", "write objects under DIR/<agent id>/ instead of verifying and discarding them")
	fs.IntVar(&o.Concurrency, "concurrency", 256, "connections for catalog and object requests, all agents together")
	fs.Float64Var(&o.Rate, "rate", 1000, "agents started per second")
	fs.DurationVar(&o.stall, "stall-timeout", 30*time.Second, "each agent's stall timeout (requests queue for the shared connections)")
	fs.DurationVar(&o.jitter, "sync-jitter", agent.DefaultConfig().SyncJitter, "with --watch: each agent syncs at a random moment within this window after an announcement (0 = at once)")
	fs.IntVar(&o.StopAfterUpdates, "stop-after-updates", 0, "with --watch: stop once every agent synced this many generations newer than the first one")
	groupFlag(fs, &o.group, env)
	fs.StringVar(&o.IDPrefix, "id-prefix", "loadgen-", "agent ids are this prefix and a number")
	fs.BoolVar(&o.allowRemote, "allow-remote", false, "allow relays that are not on loopback")
	fs.StringVar(&o.localAddr, "local-addr", "", "with --streams-only: open the streams from this IP (127.0.0.2, …; a relay bounds the streams of one address)")
	fs.BoolVar(&o.streamsOnly, "streams-only", false, "hold bare event streams (http:// relays, no --pubkey, no syncs): a relay's cost per stream and its fan-out")
	fs.BoolVar(&o.VerifyEach, "verify-each", false, "every agent verifies every metadata file itself (default: byte-identical metadata is verified once per process; every request is still made)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to FILE (where a simulated agent's time goes)")
	fs.StringVar(&o.memProfile, "memprofile", "", "with --watch: write the live heap to FILE once every agent holds its stream (what a simulated agent keeps)")
	if err := parseFlags(fs, args, stderr, "relayd loadgen --relay URL[,URL…] --root 1.root.json [--agents N] [--duration D] [--watch] [flags]"); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("relayd loadgen takes no arguments, got %q", fs.Args())}
	}
	if o.cpuProfile != "" {
		stop, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	if o.streamsOnly {
		return o.runStreams(ctx, stdout)
	}
	cfg, err := o.check()
	if err != nil {
		return err
	}
	if err := raiseNoFile(uint64(o.Agents + o.Concurrency + 256)); err != nil {
		return err
	}
	if o.memProfile != "" {
		o.OnConnected = func() {
			runtime.GC()
			if f, err := os.Create(o.memProfile); err == nil {
				_ = pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
	}
	return loadgen.Run(ctx, o.Options, cfg, stdout)
}

// check validates the flags into the agents' common config.
func (o *loadOpts) check() (agent.Config, error) {
	switch {
	case o.Agents < 1 || o.Agents > loadgen.MaxAgents:
		return agent.Config{}, usageError{fmt.Errorf("--agents %d: want 1 to %d", o.Agents, loadgen.MaxAgents)}
	case o.Duration <= 0 || o.Duration > loadgen.MaxDuration:
		return agent.Config{}, usageError{fmt.Errorf("--duration %s: want up to %s", o.Duration, loadgen.MaxDuration)}
	case o.Concurrency < 1 || o.Rate <= 0:
		return agent.Config{}, usageError{errors.New("--concurrency and --rate must be positive")}
	case o.StopAfterUpdates > 0 && !o.Watch:
		return agent.Config{}, usageError{errors.New("--stop-after-updates needs --watch")}
	case len(o.Paths) > 0 && o.Watch:
		return agent.Config{}, usageError{errors.New("--paths is for one-off fetches; with --watch choose objects with --include")}
	}
	cfg, err := relayConfig(o.relays, o.root, o.pubkey, func(u *url.URL) error {
		if o.allowRemote || isLoopback(u) {
			return nil
		}
		return errors.New("not on loopback: a load generator must not hit a production relay by mistake (--allow-remote if you mean it)")
	})
	if err != nil {
		return cfg, err
	}
	if o.jitter < 0 {
		return cfg, usageError{fmt.Errorf("--sync-jitter %s: want 0 or more", o.jitter)}
	}
	cfg.Include, cfg.StallTimeout, cfg.SyncJitter, cfg.Group = o.include, o.stall, o.jitter, o.group
	cfg.RetryBudget = o.Duration
	cfg.Workers = 2
	return cfg, nil
}

// startCPUProfile profiles the process into path until the returned
// function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func isLoopback(u *url.URL) bool {
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// runStreams is loadgen --streams-only.
func (o *loadOpts) runStreams(ctx context.Context, stdout io.Writer) error {
	so := loadgen.StreamOptions{Relays: splitComma(o.relays), Streams: o.Agents, Duration: o.Duration, Rate: o.Rate,
		IDPrefix: o.IDPrefix, ConnectTimeout: 10 * time.Second, StopAfterUpdates: o.StopAfterUpdates}
	switch {
	case o.Agents < 1 || o.Agents > loadgen.MaxAgents:
		return usageError{fmt.Errorf("--agents %d: want 1 to %d", o.Agents, loadgen.MaxAgents)}
	case o.Duration <= 0 || o.Duration > loadgen.MaxDuration:
		return usageError{fmt.Errorf("--duration %s: want up to %s", o.Duration, loadgen.MaxDuration)}
	case o.Rate <= 0:
		return usageError{errors.New("--rate must be positive")}
	case len(so.Relays) == 0:
		return usageError{errors.New("--relay is required: the URL of at least one relay (http://relay:20080)")}
	}
	if o.localAddr != "" {
		if so.LocalAddr = net.ParseIP(o.localAddr); so.LocalAddr == nil {
			return usageError{fmt.Errorf("--local-addr %q: not an IP address", o.localAddr)}
		}
	}
	for _, r := range so.Relays {
		u, err := url.Parse(r)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return usageError{fmt.Errorf("--relay %q: --streams-only wants http://host:port", r)}
		}
		if !o.allowRemote && !isLoopback(u) {
			return usageError{fmt.Errorf("--relay %s: not on loopback (--allow-remote if you mean it)", r)}
		}
	}
	if err := raiseNoFile(uint64(o.Agents + 256)); err != nil {
		return err
	}
	return loadgen.RunStreams(ctx, so, stdout)
}
