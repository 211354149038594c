// relayd loadgen: N simulated agents in one process, each a real
// pkg/agent with its own relay order, stream and state, against relays on
// loopback; it prints what they saw.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/agent"
	"github.com/relayd/relayd/pkg/units"
)

// Bounds of a load generation run.
const (
	maxLoadAgents   = 100000
	maxLoadDuration = time.Hour
)

type loadOpts struct {
	relays, pubkey, out, idPrefix string
	paths, include                []string
	agents, concurrency, stopN    int
	rate                          float64
	duration, stall               time.Duration
	watch, allowRemote            bool
}

// loadgenCmd: relayd loadgen --relay URL,… --agents N --duration D --pubkey K [--watch] [--paths …].
func loadgenCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var o loadOpts
	fs := flag.NewFlagSet("relayd loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.relays, "relay", envOr(env, "RELAYD_RELAY", ""), "relay base URLs, comma-separated (loopback only unless --allow-remote)")
	fs.StringVar(&o.pubkey, "pubkey", envOr(env, "RELAYD_PUBKEY", ""), "public key that signs the catalog")
	fs.IntVar(&o.agents, "agents", 100, fmt.Sprintf("simulated agents (at most %d)", maxLoadAgents))
	fs.DurationVar(&o.duration, "duration", 30*time.Second, fmt.Sprintf("run this long (at most %s)", maxLoadDuration))
	fs.BoolVar(&o.watch, "watch", false, "each agent keeps an event stream open and syncs on every announcement")
	fs.Var(listFlag{&o.paths}, "paths", "catalog paths each agent fetches once (without --watch); default: sync --include")
	fs.Var(listFlag{&o.include}, "include", "globs each agent syncs (default everything)")
	fs.StringVar(&o.out, "out", "", "write objects under DIR/<agent id>/ instead of verifying and discarding them")
	fs.IntVar(&o.concurrency, "concurrency", 256, "connections for catalog and object requests, all agents together")
	fs.Float64Var(&o.rate, "rate", 1000, "agents started per second")
	fs.DurationVar(&o.stall, "stall-timeout", 30*time.Second, "each agent's stall timeout (requests queue for the shared connections)")
	fs.IntVar(&o.stopN, "stop-after-updates", 0, "with --watch: stop once every agent synced this many generations newer than the first one")
	fs.StringVar(&o.idPrefix, "id-prefix", "loadgen-", "agent ids are this prefix and a number")
	fs.BoolVar(&o.allowRemote, "allow-remote", false, "allow relays that are not on loopback")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("relayd loadgen takes no arguments, got %q", fs.Args())}
	}
	cfg, err := o.check()
	if err != nil {
		return err
	}
	if err := raiseNoFile(uint64(o.agents + o.concurrency + 256)); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	return runLoad(ctx, cancel, o, cfg, stdout)
}

// check validates the flags into the agents' common config.
func (o *loadOpts) check() (agent.Config, error) {
	switch {
	case o.agents < 1 || o.agents > maxLoadAgents:
		return agent.Config{}, usageError{fmt.Errorf("--agents %d: want 1 to %d", o.agents, maxLoadAgents)}
	case o.duration <= 0 || o.duration > maxLoadDuration:
		return agent.Config{}, usageError{fmt.Errorf("--duration %s: want up to %s", o.duration, maxLoadDuration)}
	case o.concurrency < 1 || o.rate <= 0:
		return agent.Config{}, usageError{errors.New("--concurrency and --rate must be positive")}
	case o.stopN > 0 && !o.watch:
		return agent.Config{}, usageError{errors.New("--stop-after-updates needs --watch")}
	case len(o.paths) > 0 && o.watch:
		return agent.Config{}, usageError{errors.New("--paths is for one-off fetches; with --watch choose objects with --include")}
	}
	cfg, err := relayConfig(o.relays, o.pubkey, func(u *url.URL) error {
		if o.allowRemote || isLoopback(u) {
			return nil
		}
		return errors.New("not on loopback: a load generator must not hit a production relay by mistake (--allow-remote if you mean it)")
	})
	if err != nil {
		return cfg, err
	}
	cfg.Include, cfg.StallTimeout = o.include, o.stall
	cfg.RetryBudget = o.duration
	cfg.Workers = 2
	return cfg, nil
}

func isLoopback(u *url.URL) bool {
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// countingTransport counts requests per relay host.
type countingTransport struct {
	rt http.RoundTripper
	mu sync.Mutex
	n  map[string]int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n[r.URL.Host]++
	c.mu.Unlock()
	return c.rt.RoundTrip(r)
}

func (c *countingTransport) counts() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

// genTimes follows one generation across the agents.
type genTimes struct {
	firstNotified, lastNotified, lastUpdated time.Time
	notified, updated                        int
}

// loadRun is the shared bookkeeping of a run.
type loadRun struct {
	mu         sync.Mutex
	gens       map[uint64]*genTimes
	agentGen   []uint64 // per agent: newest generation notified
	agentSync  []uint64 // per agent: newest generation synced
	firstGen   uint64
	ok, failed atomic.Int64
	connected  atomic.Int64
	allUp      time.Time
}

func (l *loadRun) gen(g uint64) *genTimes {
	t := l.gens[g]
	if t == nil {
		t = &genTimes{}
		l.gens[g] = t
		if l.firstGen == 0 || g < l.firstGen {
			l.firstGen = g
		}
	}
	return t
}

func (l *loadRun) notified(i int, g uint64, n int, connected func()) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.agentGen[i] == 0 {
		if l.connected.Add(1) == int64(n) {
			l.allUp = now
			connected()
		}
	}
	if g <= l.agentGen[i] {
		return
	}
	l.agentGen[i] = g
	t := l.gen(g)
	if t.notified == 0 {
		t.firstNotified = now
	}
	t.notified++
	t.lastNotified = now
}

// synced records that agent i synced generation g. A sync can bring a
// generation before any agent was told of it (a sync for the previous
// announcement that found the relay already serving the next one); that
// agent is then never notified into a sync of it again, so the generation
// is recorded here too, or it would never count as updated everywhere and
// --stop-after-updates would wait for ever.
func (l *loadRun) synced(i int, g uint64) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gen(g)
	for gg := range l.gens {
		if gg > l.agentSync[i] && gg <= g {
			t := l.gens[gg]
			t.updated++
			t.lastUpdated = now
		}
	}
	l.agentSync[i] = max(l.agentSync[i], g)
}

// updatedAll counts generations after the first that every agent synced.
func (l *loadRun) updatedAll(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := 0
	for g, t := range l.gens {
		if g > l.firstGen && t.updated >= n {
			k++
		}
	}
	return k
}

func runLoad(ctx context.Context, cancel context.CancelFunc, o loadOpts, base agent.Config, stdout io.Writer) error {
	dialer := &net.Dialer{Timeout: base.ConnectTimeout, KeepAlive: 30 * time.Second}
	fetchTr := &countingTransport{n: map[string]int64{}, rt: &http.Transport{DialContext: dialer.DialContext, DisableCompression: true,
		MaxConnsPerHost: o.concurrency, MaxIdleConnsPerHost: o.concurrency, IdleConnTimeout: 90 * time.Second}}
	streamTr := &countingTransport{n: map[string]int64{}, rt: &http.Transport{DialContext: dialer.DialContext, DisableCompression: true,
		MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Second}}
	run := &loadRun{gens: map[uint64]*genTimes{}, agentGen: make([]uint64, o.agents), agentSync: make([]uint64, o.agents)}
	agents := make([]*agent.Agent, o.agents)
	start := time.Now()
	fmt.Fprintf(stdout, "loadgen: %d agents against %s for %s (%s)\n", o.agents, strings.Join(base.Relays, ","), o.duration,
		map[bool]string{true: "watch", false: "one sync each"}[o.watch])
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Duration(float64(time.Second) / o.rate))
	defer tick.Stop()
	connected := func() {
		fmt.Fprintf(stdout, "all %d agents connected after %.2fs\n", o.agents, time.Since(start).Seconds())
	}
	var stopOnce sync.Once
start:
	for i := range o.agents {
		cfg := base
		cfg.ID = fmt.Sprintf("%s%05d", o.idPrefix, i)
		cfg.Transport, cfg.StreamTransport = fetchTr, streamTr
		if o.out != "" {
			cfg.Dir = filepath.Join(o.out, cfg.ID)
		} else {
			cfg.Discard = true
		}
		if o.watch {
			cfg.OnAnnounce = func(g uint64) { run.notified(i, g, o.agents, connected) }
		}
		a, err := agent.New(cfg, zerolog.Nop())
		if err != nil {
			cancel()
			wg.Wait()
			return err
		}
		agents[i] = a
		wg.Go(func() {
			if !o.watch {
				var err error
				if len(o.paths) > 0 {
					_, err = a.Fetch(ctx, o.paths...)
				} else {
					_, err = a.Sync(ctx)
				}
				if err != nil {
					run.failed.Add(1)
					return
				}
				run.ok.Add(1)
				return
			}
			_ = a.Watch(ctx, func(res agent.Result, err error) {
				if err != nil {
					run.failed.Add(1)
					return
				}
				run.ok.Add(1)
				run.synced(i, res.Generation)
				if o.stopN > 0 && run.updatedAll(o.agents) >= o.stopN {
					stopOnce.Do(cancel)
				}
			})
		})
		select {
		case <-ctx.Done():
			break start
		case <-tick.C:
		}
	}
	wg.Wait()
	took := time.Since(start)
	return printLoad(stdout, o, run, agents, fetchTr.counts(), streamTr.counts(), took)
}

func printLoad(w io.Writer, o loadOpts, run *loadRun, agents []*agent.Agent, reqs, streams map[string]int64, took time.Duration) error {
	var st agent.Stats
	started := 0
	for _, a := range agents {
		if a == nil {
			continue
		}
		started++
		s := a.Stats()
		st.Failovers += s.Failovers
		st.Resumes += s.Resumes
		st.Restarts += s.Restarts
		st.Bytes += s.Bytes
		st.Objects += s.Objects
	}
	fmt.Fprintf(w, "agents: %d started of %d; syncs: %d ok, %d failed; failovers %d, resumes %d, restarts %d; %d objects, %s in %.1fs\n",
		started, o.agents, run.ok.Load(), run.failed.Load(), st.Failovers, st.Resumes, st.Restarts, st.Objects,
		units.FormatBytes(st.Bytes), took.Seconds())
	var total int64
	hosts := make([]string, 0, len(reqs))
	for h, n := range reqs {
		hosts = append(hosts, h)
		total += n
	}
	sort.Strings(hosts)
	var share []string
	for _, h := range hosts {
		share = append(share, fmt.Sprintf("%s:%.1f%%", h, 100*float64(reqs[h])/float64(max(total, 1))))
		fmt.Fprintf(w, "relay %s: %d requests (%.1f%%), %d event streams\n", h, reqs[h], 100*float64(reqs[h])/float64(max(total, 1)), streams[h])
	}
	fanout, updated := "NA", "NA"
	if o.watch {
		run.mu.Lock()
		gens := make([]uint64, 0, len(run.gens))
		for g := range run.gens {
			gens = append(gens, g)
		}
		slices.Sort(gens)
		for _, g := range gens {
			t := run.gens[g]
			line := fmt.Sprintf("generation %d: notified %d/%d", g, t.notified, o.agents)
			if g == run.firstGen {
				line += " (current at connect)"
			} else if t.notified == o.agents {
				fanout = fmt.Sprintf("%.0f", float64(t.lastNotified.Sub(t.firstNotified).Microseconds())/1000)
				line += fmt.Sprintf(" within %sms", fanout)
			}
			line += fmt.Sprintf(", updated %d/%d", t.updated, o.agents)
			if t.updated == o.agents && g != run.firstGen {
				updated = fmt.Sprintf("%.0f", float64(t.lastUpdated.Sub(t.firstNotified).Microseconds())/1000)
				line += fmt.Sprintf(", all updated %sms after the first notification", updated)
			}
			fmt.Fprintln(w, line)
			if g != run.firstGen {
				fmt.Fprintf(w, "generation %d: first notified at %d ms, last notified at %d ms, last updated at %d ms (unix)\n", g,
					t.firstNotified.UnixMilli(), t.lastNotified.UnixMilli(), t.lastUpdated.UnixMilli())
			}
		}
		run.mu.Unlock()
	}
	fmt.Fprintf(w, "LOADGEN agents=%d connected=%d ok=%d failed=%d failovers=%d bytes=%d fanout_ms=%s updated_ms=%s requests=%d share=%s\n",
		o.agents, run.connected.Load(), run.ok.Load(), run.failed.Load(), st.Failovers, st.Bytes, fanout, updated, total, strings.Join(share, ","))
	if run.ok.Load() == 0 {
		return errors.New("loadgen: no agent completed a sync")
	}
	return nil
}
