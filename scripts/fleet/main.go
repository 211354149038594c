// Command fleet simulates a relayd fleet on one machine (`make fleet`,
// docs/fleet.md):
//
//	origin
//	  └ top group (mirrors)
//	      └ regional groups (mirrors)
//	          └ branch groups (proxies) ← simulated agents (relayd loadgen --watch)
//
// every relay its own process and data directory under one temporary
// root, the agents spread over the branch groups by loadgen processes of
// at most --agents-per-proc agents each (the per-process descriptor
// limit). With --netns every branch group lives in its own network
// namespace behind a rate-limited veth link (tc netem) to its parents.
// It publishes a generation, kills --kills relays at random, publishes
// again and writes a report (JSON and markdown): origin bytes per object,
// bytes per link, publish → last agent notified and synced, failovers,
// the slowest branch, RSS and CPU per relay. Everything runs under one
// deadline (--deadline), and every process, namespace and directory it
// made is removed when it ends, also on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is the command line.
type config struct {
	relayd        string
	counts        [4]int
	groupSize     int
	agents        int
	perProc       int
	rate          float64
	concurrency   int
	agentStall    time.Duration
	streams       int // --streams: bare streams against one relay instead of the fleet
	streamProcs   int
	streamsSettle time.Duration
	kills         int
	deadline      time.Duration
	objects       int
	objectSize    int
	changePct     int
	agentBytes    int
	netns         bool
	linkRate      string
	linkDelay     time.Duration
	report        string
	seed          uint64
	keep          bool
	syncJitter    string
	reportEvery   time.Duration
	stopOnAgentsN bool // test hook: stop once the agents hold generation 1
}

// Limits: the simulator is bounded in count and time.
const (
	maxRelays    = 200
	maxAgents    = 200000
	maxPerProc   = 19000 // 20,000 descriptors a process, less the shared connections
	maxDeadline  = time.Hour
	maxObjects   = 2000
	maxObjectLen = 64 << 20
)

func parseConfig(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: go run ./scripts/fleet [flags]   (make fleet FLEET="flags")

A relayd fleet on this machine (origin, top, regional and branch groups, one
process per relay; agents by relayd loadgen processes): publish, kill relays
at random, publish again, report (docs/fleet.md). Loopback only, or with
--netns its own namespaces; everything it made is removed at the end, also on
SIGINT/SIGTERM.

`)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.relayd, "relayd", "bin/relayd", "relayd binary (make build)")
	relays := fs.String("relays", "1,3,10,36", "relays per level: origin,top,regional,branch (origin must be 1)")
	fs.IntVar(&c.groupSize, "group-size", 2, "relays per regional and per branch group")
	fs.IntVar(&c.agents, "agents", 100000, "simulated agents, spread over the branch groups")
	fs.IntVar(&c.perProc, "agents-per-proc", 9000, fmt.Sprintf("agents per relayd loadgen process (at most %d: the descriptor limit is 20,000 a process)", maxPerProc))
	fs.Float64Var(&c.rate, "rate", 500, "agents each loadgen process starts per second")
	fs.IntVar(&c.concurrency, "loadgen-concurrency", 64, "each loadgen's --concurrency (connections its agents share for metadata and objects)")
	fs.DurationVar(&c.agentStall, "agent-stall-timeout", 2*time.Minute, "each loadgen's --stall-timeout: an agent's request waits for one of the process's shared connections first, and that wait is not a relay stalling (30 s counted it so on a loaded machine: issue 18's request failovers)")
	fs.IntVar(&c.kills, "kills", 10, "relays killed (kill -9) at random between the two publishes (never the origin nor a group's last relay)")
	fs.DurationVar(&c.deadline, "deadline", 15*time.Minute, "the whole run's bound (at most 1h)")
	fs.IntVar(&c.objects, "objects", 40, "objects in the first generation")
	fs.IntVar(&c.objectSize, "object-size", 256<<10, "bytes per object")
	fs.IntVar(&c.agentBytes, "agent-object-size", 16<<10, "bytes of the object every generation adds under agents/ (what the agents sync: --include agents/**)")
	fs.IntVar(&c.changePct, "change", 25, "percent of the objects each later generation adds a new version of")
	fs.BoolVar(&c.netns, "netns", false, "each branch group in its own network namespace behind a tc-limited veth link (root; skipped with a message when not permitted)")
	fs.StringVar(&c.linkRate, "link-rate", "200mbit", "with --netns: the rate of each branch's link to its parents (tc netem rate)")
	fs.DurationVar(&c.linkDelay, "link-delay", 5*time.Millisecond, "with --netns: one-way delay of each branch's link")
	fs.StringVar(&c.report, "report", "fleet-report", "directory the report (fleet.json, fleet.md) is written to")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the random kills")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary root (logs, data directories) and print where it is")
	fs.StringVar(&c.syncJitter, "sync-jitter", "", "passed to relayd loadgen --sync-jitter when it knows the flag (empty: its default)")
	fs.DurationVar(&c.reportEvery, "report-interval", 2*time.Second, "relays' --report-interval")
	fs.IntVar(&c.streams, "streams", 0, "instead of the fleet: an origin and one relay holding this many bare push streams from --streams-procs loadgens (RSS per stream, fan-out; report streams.{json,md})")
	fs.IntVar(&c.streamProcs, "streams-procs", 3, "with --streams: loadgen processes, each from its own loopback address (127.0.0.2, …)")
	fs.DurationVar(&c.streamsSettle, "streams-settle", 8*time.Second, "with --streams: how long after the last stream the relay's RSS is read")
	fs.BoolVar(&c.stopOnAgentsN, "test-stop-after-connect", false, "for tests: stop once every agent holds the first generation")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("fleet takes no arguments, got %q", fs.Args())
	}
	parts := strings.Split(*relays, ",")
	if len(parts) != 4 {
		return c, fmt.Errorf("--relays %q: want four counts origin,top,regional,branch", *relays)
	}
	total := 0
	for i, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 {
			return c, fmt.Errorf("--relays %q: %q is not a positive count", *relays, p)
		}
		c.counts[i] = n
		total += n
	}
	switch {
	case c.counts[0] != 1:
		return c, errors.New("--relays: the origin level has exactly one relay")
	case total > maxRelays:
		return c, fmt.Errorf("--relays: %d relays, at most %d", total, maxRelays)
	case c.groupSize < 1 || c.groupSize > 16:
		return c, errors.New("--group-size: 1 to 16")
	case c.agents < 1 || c.agents > maxAgents:
		return c, fmt.Errorf("--agents %d: 1 to %d", c.agents, maxAgents)
	case c.perProc < 1 || c.perProc > maxPerProc:
		return c, fmt.Errorf("--agents-per-proc %d: 1 to %d", c.perProc, maxPerProc)
	case c.deadline <= 0 || c.deadline > maxDeadline:
		return c, fmt.Errorf("--deadline %s: up to %s", c.deadline, maxDeadline)
	case c.objects < 1 || c.objects > maxObjects || c.objectSize < 1 || c.objectSize > maxObjectLen ||
		c.agentBytes < 1 || c.agentBytes > maxObjectLen:
		return c, fmt.Errorf("--objects 1 to %d, --object-size 1 to %d", maxObjects, maxObjectLen)
	case c.agentStall < time.Second || c.agentStall > 10*time.Minute:
		return c, errors.New("--agent-stall-timeout: 1s to 10m")
	case c.streams < 0 || c.streams > maxAgents || c.streamProcs < 1 || c.streamProcs > 16 ||
		(c.streams > 0 && (c.streams+c.streamProcs-1)/c.streamProcs > maxPerProc) || c.streamsSettle < 0 || c.streamsSettle > time.Minute:
		return c, fmt.Errorf("--streams 0 to %d, --streams-procs 1 to 16 with at most %d streams each, --streams-settle up to 1m", maxAgents, maxPerProc)
	case c.changePct < 1 || c.changePct > 100 || c.kills < 0 || c.rate <= 0 || c.concurrency < 1 || c.concurrency > 1024:
		return c, errors.New("--change 1 to 100, --kills ≥ 0, --rate > 0, --loadgen-concurrency 1 to 1024")
	}
	return c, nil
}

func main() {
	c, err := parseConfig(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		stop()
		os.Exit(1)
	}
}

// run builds the fleet, runs the scenario, writes the report and removes
// everything it made (deferred, so also on an error or a signal).
func run(parent context.Context, c config, out io.Writer) (err error) {
	bin, err := filepath.Abs(c.relayd)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("relayd binary: %w (make build)", err)
	}
	ctx, cancel := context.WithTimeoutCause(parent, c.deadline, fmt.Errorf("the deadline (--deadline %s) passed", c.deadline))
	defer cancel()
	root, err := os.MkdirTemp("", "relayd-fleet-")
	if err != nil {
		return err
	}
	f := &fleet{ctx: ctx, cfg: c, bin: bin, root: root, tree: filepath.Join(root, "tree"), out: out, began: time.Now()}
	fmt.Fprintf(out, "fleet: temporary root %s\n", root)
	defer func() {
		f.cleanup()
		fmt.Fprintf(out, "fleet: cleaned up (processes, namespaces, %s)\n", map[bool]string{true: "root kept: " + root, false: "root removed"}[c.keep])
	}()
	scenario := f.scenario
	if c.streams > 0 {
		scenario = f.streamsScenario
	}
	if err := scenario(); err != nil {
		if parent.Err() != nil {
			return fmt.Errorf("interrupted: %w", err)
		}
		return err
	}
	return nil
}

// fleet is one run.
type fleet struct {
	ctx         context.Context
	cfg         config
	bin         string
	root, tree  string
	out         io.Writer
	began       time.Time
	trust       trust
	levels      [][]*group
	ps          procs
	nets        *netns
	loadgens    []*loadgen
	objects     int
	objectBytes int64
	lastGen     uint64
	// The origin's bytes served and the bytes published when every agent
	// held the first generation.
	originAtStand, objectsAtStand int64
	rep                           report
}

// loadgen is one relayd loadgen process and the branch group it loads.
type loadgen struct {
	g      *group
	agents int
	p      *proc
	out    string
	proc   procSample // the last /proc sample before it exited
}

// sampleLoadgens keeps each running loadgen's last /proc sample (their
// CPU is most of a run's: the agents verify what they sync).
func (f *fleet) sampleLoadgens() {
	for _, lg := range f.loadgens {
		if !lg.p.exited() {
			// An exited, unreaped process has no memory lines: keep
			// the peak seen before.
			if s, err := sampleProc(lg.p.cmd.Process.Pid); err == nil {
				lg.proc.CPU, lg.proc.PeakRSS = s.CPU, max(lg.proc.PeakRSS, s.PeakRSS)
			}
		}
	}
}

func (f *fleet) logf(format string, args ...any) {
	fmt.Fprintf(f.out, "[%6.1fs] %s\n", time.Since(f.began).Seconds(), fmt.Sprintf(format, args...))
}

// cleanup stops every process, removes the namespaces and the root.
func (f *fleet) cleanup() {
	f.ps.stopAll(5 * time.Second)
	if f.nets != nil {
		f.nets.remove()
	}
	if !f.cfg.keep {
		_ = os.RemoveAll(f.root)
	}
}
