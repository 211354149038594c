package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// streamsReport is what --streams measures: one relay holding bare push
// streams from several loadgen processes, each from its own loopback
// address (a relay bounds the streams of one address).
type streamsReport struct {
	Started   time.Time `json:"started"`
	Commit    string    `json:"commit"`
	Streams   int       `json:"streams"`
	Procs     int       `json:"loadgen_procs"`
	Connected int64     `json:"connected"` // the relay's count (GET /v1/status agents)
	// The relay's VmRSS before the first stream and once every stream
	// is held (after --streams-settle), and its peak.
	RSSIdle, RSS, PeakRSS int64   `json:"-"`
	RSSIdleMiB            float64 `json:"rss_idle_mib"`
	RSSMiB                float64 `json:"rss_mib"`
	PeakRSSMiB            float64 `json:"peak_rss_mib"`
	PerStreamKiB          float64 `json:"rss_per_stream_kib"`      // RSS ÷ streams
	RisePerStreamKiB      float64 `json:"rss_rise_per_stream_kib"` // (RSS − idle RSS) ÷ streams
	CPUSeconds            float64 `json:"relay_cpu_seconds"`
	// publish → last stream notified (the loadgens' clocks), and first
	// → last.
	PublishToLastMS float64  `json:"publish_to_last_notified_ms"`
	FanoutMS        float64  `json:"first_to_last_notified_ms"`
	LoadgenLines    []string `json:"loadgen_lines"`
}

// streamsScenario is --streams: an origin and one proxy relay, and
// --streams-procs loadgens holding --streams bare push streams against
// it; the relay's RSS per stream from /proc, then a publish and its
// fan-out.
func (f *fleet) streamsScenario() error {
	c := f.cfg
	origin := &group{name: "origin", level: 0}
	origin.relays = []*relay{{name: "origin", mode: "origin", g: origin}}
	branch := &group{name: "branch-1", level: 3, parent: origin}
	rl := &relay{name: "branch-1-1", mode: "proxy", g: branch}
	branch.relays = []*relay{rl}
	f.levels = [][]*group{{origin}, {}, {}, {branch}}
	if err := f.setupTrust(); err != nil {
		return err
	}
	if _, _, err := f.publish(1); err != nil {
		return err
	}
	for _, r := range []*relay{origin.relays[0], rl} {
		if err := f.addresses(r); err != nil {
			return err
		}
		if err := f.startRelay(r); err != nil {
			return err
		}
		if err := poll(f.ctx, 2*time.Minute, r.name+" to serve a generation", func() bool { return r.p.exited() || f.generation(r) > 0 }); err != nil {
			return err
		}
		if r.p.exited() {
			return fmt.Errorf("%s exited (log %s)", r.name, r.p.logPath)
		}
	}
	rep := streamsReport{Started: f.began.UTC(), Commit: commit(), Streams: c.streams, Procs: c.streamProcs}
	idle, err := sampleProc(rl.p.cmd.Process.Pid)
	if err != nil {
		return err
	}
	rep.RSSIdle = idle.RSS
	dl, _ := f.ctx.Deadline()
	for i := range c.streamProcs {
		m := c.streams / c.streamProcs
		if i < c.streams%c.streamProcs {
			m++
		}
		name := fmt.Sprintf("streams-%d", i+1)
		argv := []string{f.bin, "loadgen", "--streams-only", "--relay", rl.url(), "--agents", strconv.Itoa(m),
			"--local-addr", fmt.Sprintf("127.0.0.%d", 2+i), "--rate", strconv.FormatFloat(f.cfg.rate, 'f', -1, 64),
			"--stop-after-updates", "1", "--id-prefix", name + "-", "--duration", time.Until(dl).Round(time.Second).String()}
		p, err := f.ps.start(name, filepath.Join(f.root, name+".log"), argv...)
		if err != nil {
			return err
		}
		f.loadgens = append(f.loadgens, &loadgen{g: branch, agents: m, p: p})
	}
	f.logf("%d bare streams from %d loadgen processes against %s; relay RSS idle %.1f MiB", c.streams, c.streamProcs, rl.name, mibF(rep.RSSIdle))
	// Until every stream is held, or the count stopped growing for 20 s
	// (the relay refuses more: its descriptor limit, --events-max, or
	// the last places it keeps for addresses holding few streams).
	grew := time.Now()
	err = poll(f.ctx, time.Hour, "every stream to be held", func() bool {
		for _, lg := range f.loadgens {
			if lg.p.exited() {
				return true
			}
		}
		if n := f.status(rl).Agents; n > rep.Connected {
			rep.Connected, grew = n, time.Now()
		}
		return rep.Connected >= int64(c.streams) || (rep.Connected > 0 && time.Since(grew) > 20*time.Second)
	})
	if err != nil {
		return err
	}
	if rep.Connected < int64(c.streams) {
		f.logf("the relay holds %d of %d streams and refuses more (log %s: too_many_streams?)", rep.Connected, c.streams, rl.p.logPath)
	}
	f.logf("relay holds %d streams; sampling its RSS in %s", rep.Connected, c.streamsSettle)
	select {
	case <-f.ctx.Done():
		return f.ctx.Err()
	case <-time.After(c.streamsSettle):
	}
	s, err := sampleProc(rl.p.cmd.Process.Pid)
	if err != nil {
		return err
	}
	rep.RSS, rep.PeakRSS, rep.CPUSeconds = s.RSS, s.PeakRSS, s.CPU
	n := float64(max(rep.Connected, 1))
	rep.RSSIdleMiB, rep.RSSMiB, rep.PeakRSSMiB = mibF(rep.RSSIdle), mibF(rep.RSS), mibF(rep.PeakRSS)
	rep.PerStreamKiB, rep.RisePerStreamKiB = float64(rep.RSS)/1024/n, float64(rep.RSS-rep.RSSIdle)/1024/n
	began, _, err := f.publish(2)
	if err != nil {
		return err
	}
	// Each loadgen ends when all its streams were notified; one with
	// streams the relay refused does not: a minute, then it is stopped
	// (it prints its summary on SIGTERM).
	_ = poll(f.ctx, time.Minute, "every loadgen to see the publish", func() bool {
		for _, lg := range f.loadgens {
			if !lg.p.exited() {
				return false
			}
		}
		return true
	})
	var first, last int64
	for _, lg := range f.loadgens {
		lg.p.stop(10 * time.Second)
		b, err := os.ReadFile(lg.p.logPath)
		if err != nil {
			return err
		}
		out := string(b)
		for line := range strings.SplitSeq(out, "\n") {
			if a, b, ok := notifiedTimes(line); ok {
				if first == 0 || a < first {
					first = a
				}
				last = max(last, b)
			}
			if strings.HasPrefix(line, "LOADGEN ") {
				rep.LoadgenLines = append(rep.LoadgenLines, lg.p.name+": "+line)
			}
		}
	}
	if last > 0 {
		rep.PublishToLastMS, rep.FanoutMS = float64(last-began.UnixMilli()), float64(last-first)
	}
	return f.writeStreamsReport(rep)
}

// notifiedTimes reads a loadgen's "generation G: first notified at A ms,
// last notified at B ms" line.
func notifiedTimes(line string) (int64, int64, bool) {
	_, rest, ok := strings.Cut(line, "first notified at ")
	if !ok {
		return 0, 0, false
	}
	a, rest, _ := strings.Cut(rest, " ms, last notified at ")
	b, _, _ := strings.Cut(rest, " ms")
	x, err1 := strconv.ParseInt(a, 10, 64)
	y, err2 := strconv.ParseInt(b, 10, 64)
	return x, y, err1 == nil && err2 == nil
}

func mibF(b int64) float64 { return float64(b) / (1 << 20) }

// writeStreamsReport writes streams.json and streams.md into --report and
// prints the markdown.
func (f *fleet) writeStreamsReport(rep streamsReport) error {
	if err := os.MkdirAll(f.cfg.report, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# relayd push streams on one relay\n\n%s, commit %s, %d bare streams from %d loadgen processes (one loopback address each)\n\n",
		rep.Started.Format(time.RFC3339), rep.Commit, rep.Streams, rep.Procs)
	b.WriteString("| streams held | relay RSS idle | relay RSS | peak | RSS ÷ streams | (RSS − idle) ÷ streams | relay CPU s | publish → last notified | first → last |\n|---|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| %d | %.1f MiB | %.1f MiB | %.1f MiB | **%.2f KiB** | %.2f KiB | %.1f | %.0f ms | %.0f ms |\n\n",
		rep.Connected, rep.RSSIdleMiB, rep.RSSMiB, rep.PeakRSSMiB, rep.PerStreamKiB, rep.RisePerStreamKiB, rep.CPUSeconds, rep.PublishToLastMS, rep.FanoutMS)
	for _, l := range rep.LoadgenLines {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	if err := os.WriteFile(filepath.Join(f.cfg.report, "streams.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(f.cfg.report, "streams.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprint(f.out, b.String())
	return nil
}
