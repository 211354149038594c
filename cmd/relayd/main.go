// Command relayd runs a relay, origin or mirror node and the admin client
// commands. main parses flags, environment and the config file into a
// node.Config and calls run; all behaviour lives in pkg/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/gcpace"
	"github.com/relayd/relayd/pkg/node"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `relayd distributes updates from an origin to agents through relay groups.

Usage:
  relayd serve [flags]                   run a node (--mode origin|mirror|proxy)
  relayd keygen --role NAME --out DIR    a TUF role key NAME.key/NAME.pub (ed25519)
                                         (--gossip: a group's gossip key; --tree: the tree key)
  relayd certs --out DIR --host H NAME…  a lab CA and node certificates for TLS and mutual TLS
  relayd publish TREE --keys DIR         write the TUF repository TREE/-/tuf (--timestamp-only:
                                         re-sign timestamp.json)
  relayd tuf init|delegate|rotate|sign|combine|commit|status
                                         the TUF repository's roles, keys and signatures
  relayd sync [--follow] [--status]      start a mirror sync now (admin API) and show progress
  relayd members [--json]                the relay group as this node sees it
  relayd status [--json]                 the node's status
  relayd tree [--json]                   the groups below this relay: members, generations, health
  relayd compliance [--json]             agents below this relay on their target generation, per ring and group
  relayd cache ls|stats|rm|pin|prefetch  the cache: list, stats, remove, pin, warm before a rollout
  relayd rollout status|promote [RING]|halt --reason R|resume
                                         the staged rollout: rings, gates, promote, halt, resume
  relayd fetch --relay URL --root R --out DIR PATH…     fetch objects from a relay group, verified
  relayd agent sync|watch --relay URL --root R --out DIR [--include GLOB]
                                         keep a directory at the newest catalog (watch: on every push)
  relayd loadgen --relay URL --agents N --duration D --root R [--watch]
                                         simulate N agents against relays on loopback
  relayd version                         print the version

Run "relayd serve --help" for the serve flags. Every flag is also an
environment variable (--cache-max ⇔ RELAYD_CACHE_MAX) and a key in the
--config YAML file (cache-max: 20GiB); flags beat env, env beats the file.
`

func main() {
	node.Version = version
	// Durations in log lines are milliseconds with a fraction, for every
	// logger of the process: zerolog keeps this in package variables.
	zerolog.DurationFieldUnit = time.Millisecond
	zerolog.DurationFieldInteger = false
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	for _, w := range unknownEnv(os.Environ()) {
		fmt.Fprintln(os.Stderr, "relayd:", w)
	}
	err := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	if err != nil {
		printError(os.Stderr, err)
		os.Exit(exitCode(err))
	}
}

// printError prints err as "relayd: …", one line per problem when err
// joins several (a configuration with three mistakes names all three).
func printError(w io.Writer, err error) {
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintln(w, "relayd:", line)
	}
}

func exitCode(err error) int {
	var ue usageError
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// usageError is a command-line mistake (exit status 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// realMain runs the command args names until it is done or ctx ends
// (SIGINT, SIGTERM).
func realMain(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{errors.New("no command")}
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "serve":
		cfg, lc, err := loadServeConfig(args, env, stderr)
		if err != nil {
			return err
		}
		log, err := newLogger(lc, stderr)
		if err != nil {
			return usageError{err}
		}
		// A configuration that cannot run is a usage error (status 2),
		// each problem named by its key.
		cfg.Complete()
		if err := cfg.Validate(); err != nil {
			return usageError{err}
		}
		if note, err := platformNote(runtime.GOOS, cfg.Mode); err != nil {
			return err
		} else if note != "" {
			log.Info().Msg("relay features missing " + note)
		}
		return run(ctx, cfg, log)
	case "keygen":
		return keygenCmd(args, stdout, stderr)
	case "certs":
		return certsCmd(args, stdout, stderr)
	case "publish":
		return publishCmd(ctx, args, stdout, stderr)
	case "tuf":
		return tufCmd(ctx, args, stdout, stderr)
	case "sync":
		return syncCmd(ctx, args, stdout, stderr, env)
	case "members":
		return membersCmd(ctx, args, stdout, stderr, env)
	case "status":
		return statusCmd(ctx, args, stdout, stderr, env)
	case "tree":
		return treeCmd(ctx, args, stdout, stderr, env)
	case "compliance":
		return complianceCmd(ctx, args, stdout, stderr, env)
	case "cache":
		return cacheCmd(ctx, args, stdout, stderr, env)
	case "rollout":
		return rolloutCmd(ctx, args, stdout, stderr, env)
	case "fetch":
		return fetchCmd(ctx, args, stdout, stderr, env)
	case "agent":
		return agentCmd(ctx, args, stdout, stderr, env)
	case "loadgen":
		return loadgenCmd(ctx, args, stdout, stderr, env)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "relayd", version)
		return nil
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		msg := fmt.Sprintf("unknown command %q", cmd)
		if s := nearest(cmd, commands); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", "relayd "+s)
		}
		return usageError{errors.New(msg + `; see "relayd help"`)}
	}
}

// run starts a node and serves until ctx ends. The collector is paced
// (pkg/gcpace) unless GOGC is set: GOGC=400 while the live heap is small
// (about 10 MiB; at Go's default of 100 it collects every few MiB
// allocated, which cost about 10 % of small-hit throughput), lower as
// streams grow it, so that garbage never takes more than 40 MiB; with
// --memory-limit, collections wait for the limit while the live heap is
// under half of it.
func run(ctx context.Context, cfg node.Config, log zerolog.Logger) error {
	pctx, stopPace := context.WithCancel(ctx)
	defer stopPace()
	gc := gcpace.DefaultConfig()
	gc.MemoryLimit = uint64(max(cfg.MemoryLimit, 0))
	go gcpace.Run(pctx, gc)
	n, err := node.New(cfg, log, clock.Real{})
	if err != nil {
		return err
	}
	// SIGHUP reloads the TLS certificate and CAs; connections stay.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = n.Reload() // logged; the material in use stays on error
			}
		}
	}()
	return n.Run(ctx)
}

// logConfig holds the logging keys.
type logConfig struct {
	Level  string
	Format string
}

// newLogger is the process's logger on w: JSON lines, or the console
// format (colored on a terminal only).
func newLogger(lc logConfig, w io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(lc.Level)
	if err != nil || lc.Level == "" {
		return zerolog.Nop(), fmt.Errorf("log-level %q: want debug, info, warn or error", lc.Level)
	}
	switch lc.Format {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !isTerminal(w)}
	default:
		return zerolog.Nop(), fmt.Errorf("log-format %q: want json or console", lc.Format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}
