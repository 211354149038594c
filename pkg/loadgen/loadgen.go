package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/agent"
	"github.com/relayd/relayd/pkg/tufclient"
	"github.com/relayd/relayd/pkg/units"
	"github.com/relayd/relayd/pkg/wire"
)

// Bounds of a run.
const (
	MaxAgents   = 100000
	MaxDuration = time.Hour
)

// Options describe a run. The agents' common configuration (relays, key,
// stall timeout, include globs) is the agent.Config given to Run.
type Options struct {
	// Agents is how many agents run, 1 to MaxAgents.
	Agents int
	// Duration bounds the run, up to MaxDuration.
	Duration time.Duration
	// Watch keeps each agent's event stream open, syncing on every
	// announcement; without it each agent syncs (or fetches Paths) once.
	Watch bool
	// Paths are fetched once by each agent (without Watch); none means
	// a sync.
	Paths []string
	// Out, when set, is where agent i writes its objects (Out/<id>/);
	// otherwise objects are verified and discarded.
	Out string
	// Concurrency bounds the connections for catalog and object requests,
	// all agents together.
	Concurrency int
	// Rate is how many agents start per second.
	Rate float64
	// StopAfterUpdates, with Watch, ends the run once every agent synced
	// this many generations newer than the first one.
	StopAfterUpdates int
	// IDPrefix starts each agent's id; a number follows.
	IDPrefix string
	// OnConnected, if set, is called (on its own goroutine) once every
	// agent holds its push stream (with Watch): relayd loadgen
	// --memprofile writes the heap then.
	OnConnected func()
	// VerifyEach makes every agent verify every metadata file it fetches
	// itself; by default the agents of the run share a tufclient.Memo
	// (byte-identical metadata verified once; every request still made).
	VerifyEach bool
}

// countingTransport counts requests per relay host.
type countingTransport struct {
	rt  http.RoundTripper
	mu  sync.Mutex
	n   map[string]int64
	log *reqLog // when each request started, if set
	// homes, if set, is each agent's relay of its last push stream
	// (by wire.AgentHeader); moves counts streams opened on another
	// relay than the agent's previous one.
	homes map[string]string
	moves int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.log != nil {
		c.log.add(time.Now())
	}
	c.mu.Lock()
	c.n[r.URL.Host]++
	if c.homes != nil {
		if id := r.Header.Get(wire.AgentHeader); id != "" {
			if prev, ok := c.homes[id]; ok && prev != r.URL.Host {
				c.moves++
			}
			c.homes[id] = r.URL.Host
		}
	}
	c.mu.Unlock()
	return c.rt.RoundTrip(r)
}

// streamMoves is how many push streams moved to another relay.
func (c *countingTransport) streamMoves() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.moves
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
	reqs       *reqLog // catalog and object requests (not streams)
	streams    int     // streams opened by a streams-only run
	// streamMoves: push streams reopened on another relay than the
	// agent's previous one (a relay killed, or its stream refused).
	streamMoves int64
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

// Run starts o.Agents agents (o.Rate a second) from base, each with its
// own id, state and relay order, lets them work until ctx ends, o.Duration
// has passed or (with Watch and StopAfterUpdates) they are all updated,
// then writes the summary to stdout. It fails when no agent completed a
// sync.
func Run(ctx context.Context, o Options, base agent.Config, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	run := &loadRun{gens: map[uint64]*genTimes{}, agentGen: make([]uint64, o.Agents), agentSync: make([]uint64, o.Agents), reqs: &reqLog{}}
	fetchTr, streamTr := transports(o, base, run.reqs)
	agents := make([]*agent.Agent, o.Agents)
	warns := &warnings{n: map[string]int64{}}
	logger := zerolog.New(warns).Level(zerolog.WarnLevel)
	if !o.VerifyEach {
		base.TUFMemo = tufclient.NewMemo()
	}
	start := time.Now()
	fmt.Fprintf(stdout, "loadgen: %d agents against %s for %s (%s)\n", o.Agents, strings.Join(base.Relays, ","), o.Duration,
		map[bool]string{true: "watch", false: "one sync each"}[o.Watch])
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Duration(float64(time.Second) / o.Rate))
	defer tick.Stop()
	connected := func() {
		fmt.Fprintf(stdout, "all %d agents connected after %.2fs\n", o.Agents, time.Since(start).Seconds())
		if o.OnConnected != nil {
			go o.OnConnected()
		}
	}
	var stopOnce sync.Once
start:
	for i := range o.Agents {
		cfg := agentConfig(o, base, i, fetchTr, streamTr)
		if o.Watch {
			cfg.OnAnnounce = func(g uint64) { run.notified(i, g, o.Agents, connected) }
		}
		a, err := agent.New(cfg, logger)
		if err != nil {
			cancel()
			wg.Wait()
			return err
		}
		agents[i] = a
		wg.Go(func() {
			if !o.Watch {
				var err error
				if len(o.Paths) > 0 {
					_, err = a.Fetch(ctx, o.Paths...)
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
				if o.StopAfterUpdates > 0 && run.updatedAll(o.Agents) >= o.StopAfterUpdates {
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
	warns.print(stdout, 8)
	printMemo(stdout, base.TUFMemo)
	run.streamMoves = streamTr.streamMoves()
	return printLoad(stdout, o, run, agents, fetchTr.counts(), streamTr.counts(), took)
}

// transports are the agents' shared transports: for catalog and object
// requests (at most o.Concurrency connections a relay, each request's
// start logged in reqs), and for their push streams (each its own
// connection; who moved to another relay counted).
func transports(o Options, base agent.Config, reqs *reqLog) (fetch, streams *countingTransport) {
	dialer := &net.Dialer{Timeout: base.ConnectTimeout, KeepAlive: 30 * time.Second}
	fetch = &countingTransport{n: map[string]int64{}, log: reqs, rt: &http.Transport{DialContext: dialer.DialContext, DisableCompression: true,
		MaxConnsPerHost: o.Concurrency, MaxIdleConnsPerHost: o.Concurrency, IdleConnTimeout: 90 * time.Second}}
	streams = &countingTransport{n: map[string]int64{}, homes: map[string]string{}, rt: &http.Transport{DialContext: dialer.DialContext, DisableCompression: true,
		MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Second}}
	return fetch, streams
}

// agentConfig is agent i's configuration: its id, the shared transports,
// its directory (or none).
func agentConfig(o Options, base agent.Config, i int, fetch, streams http.RoundTripper) agent.Config {
	cfg := base
	cfg.ID = fmt.Sprintf("%s%05d", o.IDPrefix, i)
	cfg.Transport, cfg.StreamTransport = fetch, streams
	if o.Out != "" {
		cfg.Dir = filepath.Join(o.Out, cfg.ID)
	} else {
		cfg.Discard = true
	}
	return cfg
}

// printMemo says how many updates the agents took from the memo.
func printMemo(w io.Writer, m *tufclient.Memo) {
	if m == nil {
		return
	}
	st := m.Stats()
	fmt.Fprintf(w, "metadata verified once per process: %d updates taken from another agent's verification, %d verified in full (--verify-each: every agent verifies)\n", st.Hits, st.Misses)
}

// printLoad writes a run's summary; its last line (LOADGEN …) is for
// scripts.
func printLoad(w io.Writer, o Options, run *loadRun, agents []*agent.Agent, reqs, streams map[string]int64, took time.Duration) error {
	var st agent.Stats
	started := run.streams // streams-only: no agents
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
	fmt.Fprintf(w, "agents: %d started of %d; syncs: %d ok, %d failed; failovers %d (requests), %d (push streams moved to another relay), resumes %d, restarts %d; %d objects, %s in %.1fs\n",
		started, o.Agents, run.ok.Load(), run.failed.Load(), st.Failovers, run.streamMoves, st.Resumes, st.Restarts, st.Objects,
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
	fanout, updated, peak, spread := "NA", "NA", "NA", "NA"
	if o.Watch {
		run.mu.Lock()
		gens := make([]uint64, 0, len(run.gens))
		for g := range run.gens {
			gens = append(gens, g)
		}
		slices.Sort(gens)
		for _, g := range gens {
			t := run.gens[g]
			line := fmt.Sprintf("generation %d: notified %d/%d", g, t.notified, o.Agents)
			if g == run.firstGen {
				line += " (current at connect)"
			} else if t.notified == o.Agents {
				fanout = fmt.Sprintf("%.0f", float64(t.lastNotified.Sub(t.firstNotified).Microseconds())/1000)
				line += fmt.Sprintf(" within %sms", fanout)
			}
			line += fmt.Sprintf(", updated %d/%d", t.updated, o.Agents)
			if t.updated == o.Agents && g != run.firstGen {
				updated = fmt.Sprintf("%.0f", float64(t.lastUpdated.Sub(t.firstNotified).Microseconds())/1000)
				line += fmt.Sprintf(", all updated %sms after the first notification", updated)
			}
			fmt.Fprintln(w, line)
			if g != run.firstGen {
				fmt.Fprintf(w, "generation %d: first notified at %d ms, last notified at %d ms, last updated at %d ms (unix)\n", g,
					t.firstNotified.UnixMilli(), t.lastNotified.UnixMilli(), t.lastUpdated.UnixMilli())
				if p, last := printCurve(w, g, run.reqs, t); p > 0 {
					peak, spread = strconv.Itoa(p), strconv.FormatInt(last.Milliseconds(), 10)
				}
			}
		}
		run.mu.Unlock()
	}
	fmt.Fprintf(w, "LOADGEN agents=%d connected=%d ok=%d failed=%d failovers=%d stream_moves=%d bytes=%d fanout_ms=%s updated_ms=%s requests=%d share=%s peak_per_100ms=%s spread_ms=%s\n",
		o.Agents, run.connected.Load(), run.ok.Load(), run.failed.Load(), st.Failovers, run.streamMoves, st.Bytes, fanout, updated, total, strings.Join(share, ","), peak, spread)
	if run.ok.Load() == 0 {
		return errors.New("loadgen: no agent completed a sync")
	}
	return nil
}
