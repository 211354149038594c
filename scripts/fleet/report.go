package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// report is fleet.json; fleet.md says the same in tables.
type report struct {
	Started        time.Time       `json:"started"`
	Commit         string          `json:"commit"`
	Trust          string          `json:"trust"` // tuf or catalog
	Relays         [4]int          `json:"relays"`
	GroupSize      int             `json:"group_size"`
	Agents         int             `json:"agents"`
	LoadgenProcs   int             `json:"loadgen_procs"`
	Objects        int             `json:"objects_first_generation"`
	ObjectSize     int             `json:"object_size"`
	Kills          int             `json:"kills_asked"`
	Netns          bool            `json:"netns"`
	Seed           uint64          `json:"seed"`
	ConnectSeconds float64         `json:"connect_seconds"`
	Origin         originReport    `json:"origin"`
	Publishes      []publishReport `json:"publishes"`
	Agent          agentReport     `json:"agents_summary"`
	PerRelay       []relayReport   `json:"per_relay"`
	Seconds        float64         `json:"seconds"`
	LoadgenLines   []string        `json:"loadgen_lines"`
	// Curves are the loadgens' "generation N: requests per 100 ms after
	// the first notification" lines (how --sync-jitter spread the syncs);
	// Warnings their "agent warnings: …" lines (why requests failed over).
	Curves   []string `json:"sync_curves"`
	Warnings []string `json:"agent_warnings"`
}

type originReport struct {
	ServedBytes    int64   `json:"served_bytes"`
	ObjectBytes    int64   `json:"object_bytes_published"`
	Objects        int     `json:"objects_published"`
	BytesPerObject float64 `json:"bytes_per_object_ratio"` // served ÷ published: 1.00 when each object left the origin once
	// The same for the publishes once the fleet stood (generations 2 and
	// 3): the first generation is fetched while the groups form.
	PublishServedBytes    int64   `json:"publishes_served_bytes"`
	PublishObjectBytes    int64   `json:"publishes_object_bytes"`
	PublishBytesPerObject float64 `json:"publishes_bytes_per_object_ratio"`
}

type publishReport struct {
	Generation uint64    `json:"generation"`
	Started    time.Time `json:"started"`
	PublishMS  float64   `json:"publish_command_ms"`
	Killed     []string  `json:"killed_before,omitempty"`
	// From the publish command's start, by the loadgens' clocks.
	FirstNotifiedMS float64 `json:"first_notified_ms"`
	LastNotifiedMS  float64 `json:"last_notified_ms"`
	LastSyncedMS    float64 `json:"last_synced_ms"`
	Synced          int     `json:"agents_synced"`
	SlowestBranch   string  `json:"slowest_branch"`
	SlowestMS       float64 `json:"slowest_branch_synced_ms"`
	PolledMS        float64 `json:"polled_ms"`
}

type agentReport struct {
	// Rehomed is how many agents the killed relays held when they were
	// killed: each had to move its push stream to another relay of its
	// group (loadgen's failovers count requests, not streams).
	Rehomed     int64 `json:"agents_rehomed"`
	SyncsOK     int64 `json:"syncs_ok"`
	SyncsFailed int64 `json:"syncs_failed"`
	Failovers   int64 `json:"failovers"`
	// StreamMoves: push streams the loadgens saw reopened on another
	// relay than the agent's previous one (loadgen stream_moves).
	StreamMoves int64 `json:"stream_moves"`
	Bytes       int64 `json:"bytes"`
	// CPU and peak RSS of the loadgen processes together (sampled every
	// 200 ms until each exits: the last sample, so a little short).
	LoadgenCPUSeconds float64 `json:"loadgen_cpu_seconds"`
	LoadgenPeakRSS    int64   `json:"loadgen_peak_rss_bytes"`
}

type relayReport struct {
	Name       string  `json:"name"`
	Group      string  `json:"group"`
	Level      string  `json:"level"`
	Parent     string  `json:"parent_group"`
	Killed     bool    `json:"killed"`
	Upstream   int64   `json:"upstream_bytes"` // the link from the parent group
	Peer       int64   `json:"peer_bytes"`     // from the relay's own group
	Served     int64   `json:"served_bytes"`
	Failovers  int64   `json:"upstream_failovers"`
	Resumes    int64   `json:"upstream_resumes"`
	Fallbacks  int64   `json:"upstream_fallbacks"`
	Agents     int64   `json:"agents_connected"`
	RSS        int64   `json:"rss_bytes"`
	PeakRSS    int64   `json:"peak_rss_bytes"`
	CPUSeconds float64 `json:"cpu_seconds"`
}

// genLine: "generation G: first notified at A ms, last notified at B ms,
// last updated at C ms (unix)" and "generation G: notified n/N …, updated u/N".
func parseGen(out string, gen uint64) (first, last, updated int64, synced int) {
	prefix := fmt.Sprintf("generation %d: ", gen)
	for line := range strings.SplitSeq(out, "\n") {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		if strings.HasPrefix(rest, "first notified at ") {
			_, _ = fmt.Sscanf(rest, "first notified at %d ms, last notified at %d ms, last updated at %d ms", &first, &last, &updated)
		} else if _, u, ok := strings.Cut(rest, ", updated "); ok {
			synced, _ = strconv.Atoi(strings.SplitN(u, "/", 2)[0])
		}
	}
	return
}

func kv(line, key string) int64 {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			x, _ := strconv.ParseInt(v, 10, 64)
			return x
		}
	}
	return 0
}

// collect fills the report from the loadgens' outputs and the relays'
// last samples.
func (f *fleet) collect() {
	r := &f.rep
	r.LoadgenProcs = len(f.loadgens)
	for i := range r.Publishes {
		p := &r.Publishes[i]
		t0 := p.Started.UnixMilli()
		branchLast := map[string]int64{}
		var first, last, upd int64
		for _, lg := range f.loadgens {
			a, b, c, n := parseGen(lg.out, p.Generation)
			p.Synced += n
			if a > 0 && (first == 0 || a < first) {
				first = a
			}
			last, upd = max(last, b), max(upd, c)
			branchLast[lg.g.name] = max(branchLast[lg.g.name], c)
		}
		p.FirstNotifiedMS, p.LastNotifiedMS, p.LastSyncedMS = float64(first-t0), float64(last-t0), float64(upd-t0)
		for b, t := range branchLast {
			if float64(t-t0) > p.SlowestMS || p.SlowestBranch == "" {
				p.SlowestBranch, p.SlowestMS = b, float64(t-t0)
			}
		}
	}
	for _, lg := range f.loadgens {
		r.Agent.LoadgenCPUSeconds += lg.proc.CPU
		r.Agent.LoadgenPeakRSS += lg.proc.PeakRSS
		for line := range strings.SplitSeq(lg.out, "\n") {
			switch {
			case strings.Contains(line, "requests per 100 ms"):
				r.Curves = append(r.Curves, lg.p.name+": "+line)
			case strings.HasPrefix(line, "agent warnings: "):
				r.Warnings = append(r.Warnings, lg.p.name+": "+line)
			}
			if strings.HasPrefix(line, "LOADGEN ") {
				r.LoadgenLines = append(r.LoadgenLines, lg.p.name+": "+line)
				r.Agent.SyncsOK += kv(line, "ok")
				r.Agent.SyncsFailed += kv(line, "failed")
				r.Agent.Failovers += kv(line, "failovers")
				r.Agent.StreamMoves += kv(line, "stream_moves")
				r.Agent.Bytes += kv(line, "bytes")
			}
		}
	}
	for lv, groups := range f.levels {
		for _, g := range groups {
			for _, rl := range g.relays {
				m := rl.metrics
				rr := relayReport{Name: rl.name, Group: g.name, Level: levelNames[lv], Killed: rl.killed,
					Upstream: int64(m["relayd_upstream_bytes_total"]), Peer: int64(m["relayd_peer_bytes_total"]),
					Served: int64(m["relayd_bytes_served_total"]), Failovers: int64(m["relayd_upstream_failovers_total"]),
					Resumes: int64(m["relayd_upstream_resumes_total"]), Fallbacks: int64(m["relayd_upstream_fallbacks_total"]),
					Agents: int64(m["relayd_agents_connected"]), RSS: rl.proc.RSS, PeakRSS: rl.proc.PeakRSS, CPUSeconds: rl.proc.CPU}
				if g.parent != nil {
					rr.Parent = g.parent.name
				}
				if rl.killed {
					r.Agent.Rehomed += rr.Agents
				}
				r.PerRelay = append(r.PerRelay, rr)
			}
		}
	}
	r.Origin = originReport{ServedBytes: r.PerRelay[0].Served, ObjectBytes: f.objectBytes, Objects: f.objects}
	r.Origin.BytesPerObject = float64(r.Origin.ServedBytes) / float64(max(f.objectBytes, 1))
	r.Origin.PublishServedBytes = r.Origin.ServedBytes - f.originAtStand
	r.Origin.PublishObjectBytes = f.objectBytes - f.objectsAtStand
	r.Origin.PublishBytesPerObject = float64(r.Origin.PublishServedBytes) / float64(max(r.Origin.PublishObjectBytes, 1))
	r.Seconds = time.Since(f.began).Seconds()
}

// commit is the checkout's commit when the run starts ("" outside one).
func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// writeReport writes fleet.json and fleet.md into --report and prints
// the markdown.
func (f *fleet) writeReport() error {
	f.collect()
	if err := os.MkdirAll(f.cfg.report, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(f.rep, "", "  ")
	if err != nil {
		return err
	}
	md := f.rep.markdown()
	if err := os.WriteFile(filepath.Join(f.cfg.report, "fleet.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(f.cfg.report, "fleet.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(f.out, "\n%s\nreport: %s/fleet.{json,md}\n", md, f.cfg.report)
	return nil
}

// mib is b in MiB, with three decimals under one MiB.
func mib(b int64) string {
	if b > 0 && b < 1<<20 {
		return fmt.Sprintf("%.3f", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%.1f", float64(b)/(1<<20))
}

// markdown is the report as the tables docs/benchmarks.md quotes.
func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# relayd fleet report\n\n%s, commit %s, trust %s, relays %d+%d+%d+%d (groups of %d), %d agents in %d loadgen processes, netns %v, %.0f s\n\n",
		r.Started.Format(time.RFC3339), r.Commit, r.Trust, r.Relays[0], r.Relays[1], r.Relays[2], r.Relays[3], r.GroupSize,
		r.Agents, r.LoadgenProcs, r.Netns, r.Seconds)
	fmt.Fprintf(&b, "Origin: served %s MiB for %d objects of %s MiB published: **%.2f×** bytes per object; "+
		"for the two publishes once the fleet stood: %s MiB for %s MiB, **%.2f×**.\n\n",
		mib(r.Origin.ServedBytes), r.Origin.Objects, mib(r.Origin.ObjectBytes), r.Origin.BytesPerObject,
		mib(r.Origin.PublishServedBytes), mib(r.Origin.PublishObjectBytes), r.Origin.PublishBytesPerObject)
	fmt.Fprintf(&b, "Agents: every agent held generation 1 %.1f s after the loadgens started; %d syncs ok, %d failed, %d request failovers, "+
		"%d push streams moved to another relay (%d agents were on killed relays), %s MiB; the loadgens used %.1f CPU s and %s MiB (peak RSS, together).\n\n",
		r.ConnectSeconds, r.Agent.SyncsOK, r.Agent.SyncsFailed, r.Agent.Failovers, r.Agent.StreamMoves, r.Agent.Rehomed, mib(r.Agent.Bytes),
		r.Agent.LoadgenCPUSeconds, mib(r.Agent.LoadgenPeakRSS))
	b.WriteString("| generation | relays killed before | publish command | → first notified | → last notified | → last synced | agents synced | slowest branch |\n|---|---|---|---|---|---|---|---|\n")
	for _, p := range r.Publishes {
		fmt.Fprintf(&b, "| %d | %d %s | %.0f ms | %.0f ms | %.0f ms | %.0f ms | %d | %s (%.0f ms) |\n", p.Generation, len(p.Killed),
			strings.Join(p.Killed, " "), p.PublishMS, p.FirstNotifiedMS, p.LastNotifiedMS, p.LastSyncedMS, p.Synced, p.SlowestBranch, p.SlowestMS)
	}
	b.WriteString("\nTimes are from the start of `relayd publish` (its own time included).\n\n")
	b.WriteString("| relay | level | parent group | from parent (link) MiB | from group MiB | served MiB | failovers/resumes/fallbacks | agents | RSS MiB (peak) | CPU s |\n|---|---|---|---|---|---|---|---|---|---|\n")
	rel := append([]relayReport(nil), r.PerRelay...)
	sort.SliceStable(rel, func(i, j int) bool { return levelIndex(rel[i].Level) < levelIndex(rel[j].Level) })
	for _, x := range rel {
		name := x.Name
		if x.Killed {
			name += " (killed)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %d/%d/%d | %d | %s (%s) | %.1f |\n", name, x.Level, x.Parent, mib(x.Upstream),
			mib(x.Peer), mib(x.Served), x.Failovers, x.Resumes, x.Fallbacks, x.Agents, mib(x.RSS), mib(x.PeakRSS), x.CPUSeconds)
	}
	if len(r.Curves) > 0 {
		b.WriteString("\nThe sync curve: each loadgen's catalog and object requests per 100 ms after its first notification (the first 10 s; fleet.json has all):\n\n")
		for _, c := range r.Curves {
			fmt.Fprintf(&b, "    %s\n", firstFields(c, 110))
		}
	}
	if len(r.Warnings) > 0 {
		b.WriteString("\nWhy agents' requests failed over (each loadgen's most frequent warnings, numbers blanked):\n\n")
		for _, w := range r.Warnings {
			fmt.Fprintf(&b, "    %s\n", w)
		}
	}
	return b.String()
}

func levelIndex(name string) int {
	for i, n := range levelNames {
		if n == name {
			return i
		}
	}
	return len(levelNames)
}

// firstFields is line cut after n space-separated fields.
func firstFields(line string, n int) string {
	f := strings.Fields(line)
	if len(f) <= n {
		return line
	}
	return strings.Join(f[:n], " ") + " …"
}
