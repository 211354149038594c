package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// scenario: build the fleet, let the agents sync, publish, kill, publish
// again, report.
func (f *fleet) scenario() error {
	c := f.cfg
	f.levels = layout(c.counts, c.groupSize)
	if err := f.setupTrust(); err != nil {
		return err
	}
	if c.netns {
		n, err := newNetns(f.ctx, f.levels[3], c.linkRate, c.linkDelay)
		if err != nil {
			f.logf("--netns skipped: %v (the fleet runs on loopback only)", err)
		} else {
			f.nets = n
			f.logf("--netns: namespaces relayd-fleet-%s-1…%d, bridge %s (%s), each link's ends: tc %s", n.id, len(n.links), n.bridge, n.bridgeIP, n.describe())
			if n.qdisc[1] != "netem" {
				f.logf("--netns: this kernel has no netem qdisc: the links are rate-limited (tbf) without --link-delay")
			}
		}
	}
	f.rep = report{Started: f.began.UTC(), Commit: commit(), Trust: map[bool]string{true: "tuf", false: "catalog"}[f.trust.tuf],
		Relays: c.counts, GroupSize: c.groupSize, Agents: c.agents, Objects: c.objects, ObjectSize: c.objectSize,
		Kills: c.kills, Netns: f.nets != nil, Seed: c.seed}
	if _, _, err := f.publish(1); err != nil {
		return err
	}
	if err := f.startRelays(); err != nil {
		return err
	}
	gen1 := f.generation(f.levels[0][0].relays[0])
	f.lastGen = gen1
	f.logf("%d relays up, all at generation %d", len(f.relays()), gen1)
	if err := f.startAgents(gen1); err != nil {
		return err
	}
	origin := f.levels[0][0].relays[0]
	f.scrape(origin)
	f.originAtStand, f.objectsAtStand = int64(origin.metrics["relayd_bytes_served_total"]), f.objectBytes
	// Generation 2: nothing fails.
	if err := f.publishAndWait(2, nil); err != nil {
		return err
	}
	// Kills, then generation 3.
	f.scrapeAll()
	victims := f.pickKills(c.kills, rand.New(rand.NewPCG(c.seed, 7)))
	var names []string
	for _, r := range victims {
		r.p.kill()
		names = append(names, r.name)
	}
	f.logf("killed %d relays (kill -9): %s", len(victims), strings.Join(names, " "))
	if err := f.publishAndWait(3, names); err != nil {
		return err
	}
	for _, lg := range f.loadgens {
		out, err := lg.p.output(f.ctx)
		if err != nil {
			return err
		}
		lg.out = out
	}
	f.scrapeAll()
	return f.writeReport()
}

// startRelays starts every level, each relay of a level at once, and
// waits until each holds the first generation.
func (f *fleet) startRelays() error {
	for lv, groups := range f.levels {
		for _, g := range groups {
			for _, r := range g.relays {
				if err := f.addresses(r); err != nil {
					return err
				}
			}
			for _, r := range g.relays {
				if err := f.startRelay(r); err != nil {
					return err
				}
			}
		}
		gen := uint64(0)
		for _, g := range groups {
			for _, r := range g.relays {
				err := poll(f.ctx, 2*time.Minute, r.name+" to serve a generation", func() bool {
					if r.p.exited() {
						return true
					}
					gen = f.generation(r)
					return gen > 0
				})
				if err != nil {
					return fmt.Errorf("%w (log %s)", err, r.p.logPath)
				}
				if r.p.exited() {
					_, err := r.p.output(f.ctx)
					return fmt.Errorf("%s exited: %v", r.name, err)
				}
			}
		}
		f.logf("level %s: %d relays in %d groups at generation %d", levelNames[lv], countRelays(groups), len(groups), gen)
	}
	return nil
}

func countRelays(gs []*group) int {
	n := 0
	for _, g := range gs {
		n += len(g.relays)
	}
	return n
}

// addresses gives r its content, admin and gossip addresses.
func (f *fleet) addresses(r *relay) error {
	if g := r.g; g.ns != nil {
		r.addr, r.admin, r.gossip = g.ns.next("127.0.0.1"), g.ns.next(g.ns.ip), g.ns.next("127.0.0.1")
		return nil
	}
	var err error
	if r.addr, err = freeAddr(f.parentIP()); err == nil {
		if r.admin, err = freeAddr("127.0.0.1"); err == nil {
			r.gossip, err = freeAddr("127.0.0.1")
		}
	}
	return err
}

// startRelay starts r with the flags of its level. Each member of a
// group joins every other one (their addresses are all known before the
// first starts): a mirror's first sync waits until it sees them all, so
// that the group splits the first generation.
func (f *fleet) startRelay(r *relay) error {
	g := r.g
	var err error
	argv := []string{f.bin, "serve", "--mode", r.mode, "--node", r.name, "--group", g.name, "--listen", r.addr,
		"--admin", r.admin, "--admin-token-file", filepath.Join(f.secrets(), "admin.token"), "--log-format", "json", "--log-level", "warn",
		"--tree-key-file", filepath.Join(f.secrets(), "tree.key"), "--report-interval", f.cfg.reportEvery.String()}
	if r.mode == "origin" {
		argv = append(argv, "--gossip=", "--root", f.tree)
	} else {
		argv = append(argv, "--gossip", r.gossip, "--data-dir", filepath.Join(f.root, "relays", r.name), "--upstream", g.parent.urls())
		argv = append(argv, f.trust.flags...)
		var join []string
		for _, o := range g.relays {
			if o != r {
				join = append(join, o.gossip)
			}
		}
		if len(join) > 0 {
			argv = append(argv, "--join", strings.Join(join, ","))
		}
		if gp := g.parent.parent; gp != nil {
			argv = append(argv, "--fallback", gp.urls())
		}
	}
	if g.ns != nil {
		argv = append([]string{"ip", "netns", "exec", g.ns.name}, argv...)
	}
	r.p, err = f.ps.start(r.name, filepath.Join(f.root, r.name+".log"), argv...)
	return err
}

// parentIP is the address relays outside the branches listen on:
// loopback, or with --netns the bridge the branch links attach to.
func (f *fleet) parentIP() string {
	if f.nets != nil {
		return f.nets.bridgeIP
	}
	return "127.0.0.1"
}

// startAgents starts the loadgen processes, agents spread evenly over
// the branch groups, and waits until every agent holds gen.
func (f *fleet) startAgents(gen uint64) error {
	branches := f.levels[3]
	jitter := f.cfg.syncJitter != "" && loadgenHas(f.ctx, f.bin, "sync-jitter")
	if f.cfg.syncJitter != "" && !jitter {
		f.logf("this relayd loadgen has no --sync-jitter: ignored")
	}
	for bi, g := range branches {
		n := f.cfg.agents / len(branches)
		if bi < f.cfg.agents%len(branches) {
			n++
		}
		for k := 0; n > 0; k++ {
			m := min(n, f.cfg.perProc)
			n -= m
			name := fmt.Sprintf("agents-%s-%d", g.name, k+1)
			dl, _ := f.ctx.Deadline()
			argv := []string{f.bin, "loadgen", "--relay", g.urls(), "--agents", strconv.Itoa(m), "--watch",
				"--stop-after-updates", "2", "--include", "agents/**", "--duration", time.Until(dl).Round(time.Second).String(),
				"--id-prefix", name + "-", "--concurrency", strconv.Itoa(f.cfg.concurrency), "--stall-timeout", f.cfg.agentStall.String(), "--rate", strconv.FormatFloat(f.cfg.rate, 'f', -1, 64)}
			argv = append(argv, f.trust.flags...)
			if jitter {
				argv = append(argv, "--sync-jitter", f.cfg.syncJitter)
			}
			if g.ns != nil {
				argv = append([]string{"ip", "netns", "exec", g.ns.name}, argv...)
			}
			p, err := f.ps.start(name, filepath.Join(f.root, name+".log"), argv...)
			if err != nil {
				return err
			}
			f.loadgens = append(f.loadgens, &loadgen{g: g, agents: m, p: p})
		}
	}
	f.logf("%d agents in %d loadgen processes over %d branch groups; waiting until each holds generation %d",
		f.cfg.agents, len(f.loadgens), len(branches), gen)
	t0 := time.Now()
	err := poll(f.ctx, time.Hour, "every agent to hold the first generation", func() bool {
		for _, lg := range f.loadgens {
			if lg.p.exited() {
				return true
			}
		}
		return f.atGeneration(gen) == f.cfg.agents
	})
	for _, lg := range f.loadgens {
		if lg.p.exited() {
			_, perr := lg.p.output(f.ctx)
			return errors.Join(fmt.Errorf("%s exited early", lg.p.name), perr)
		}
	}
	if err != nil {
		return err
	}
	f.rep.ConnectSeconds = time.Since(t0).Seconds()
	f.logf("all %d agents hold generation %d (%.1fs)", f.cfg.agents, gen, f.rep.ConnectSeconds)
	return nil
}

// publishAndWait publishes generation n of the tree and waits until every
// agent the relays know holds it (generation 2), or until the loadgens
// ended (the last one, after which they stop).
func (f *fleet) publishAndWait(n int, killed []string) error {
	began, done, err := f.publish(n)
	if err != nil {
		return err
	}
	// The origin takes the new generation up within a moment.
	origin, gen := f.levels[0][0].relays[0], uint64(0)
	if err := poll(f.ctx, time.Minute, "the origin to serve the new generation", func() bool {
		gen = f.generation(origin)
		return gen > f.lastGen
	}); err != nil {
		return err
	}
	f.lastGen = gen
	pr := publishReport{Generation: gen, Started: began, PublishMS: ms(done.Sub(began)), Killed: killed}
	f.logf("published generation %d (%d objects, %.0f ms)", gen, f.objects, pr.PublishMS)
	if n == 3 {
		err = poll(f.ctx, time.Hour, "every loadgen to see its agents updated", func() bool {
			f.sampleLoadgens()
			for _, lg := range f.loadgens {
				if !lg.p.exited() {
					return false
				}
			}
			return true
		})
	} else {
		err = poll(f.ctx, time.Hour, fmt.Sprintf("every agent to hold generation %d", gen), func() bool {
			return f.atGeneration(gen) == f.cfg.agents
		})
	}
	if err != nil {
		return err
	}
	pr.PolledMS = ms(time.Since(began))
	f.rep.Publishes = append(f.rep.Publishes, pr)
	f.logf("every agent holds generation %d (seen by polling after %.0f ms)", gen, pr.PolledMS)
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
