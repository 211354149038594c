// Command demo runs the whole system on loopback (`make demo`):
//
//	origin (a published TUF repository: root, targets, snapshot and
//	        timestamp keys, teams security and software delegated by path)
//	  └ hq: 3 mirror relays, one group
//	      ├ branch-a: 2 proxy relays, one group (fallback: the origin)
//	      └ branch-b: 1 proxy relay
//
// A few hundred simulated agents (`relayd loadgen --watch`) sync from the
// branches and stay connected. Then one hq relay is killed and a new
// generation is published: it is pushed down the tree, the agents update,
// and the demo prints what was fetched from where, the WAN bytes against
// the bytes served, the failovers and the time until every agent had the
// new generation. Every process it starts is stopped when it ends.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	relayd := flag.String("relayd", "bin/relayd", "relayd binary")
	agents := flag.Int("agents", 300, "simulated agents (two thirds in branch-a)")
	keep := flag.Bool("keep", false, "keep the work directory")
	flag.Parse()
	if err := run(*relayd, *agents, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// tree is the update tree of the first generation: path → size.
var tree = map[string]int{
	"software/linux-amd64/1.4.2/agent.tar.gz": 3 << 20,
	"software/windows-amd64/1.4.2/agent.msi":  2 << 20,
	"debian/dists/stable/InRelease":           12 << 10,
}

func init() {
	for i := range 12 {
		tree[fmt.Sprintf("security/2026-11/kb-%03d.patch", i)] = 48 << 10
	}
}

// relay is one relayd process of the demo.
type relay struct {
	name, group, mode string
	addr, admin       string
	gossip            string
	p                 *proc
}

func (r *relay) url() string { return "http://" + r.addr }

type demo struct {
	ctx   context.Context
	bin   string
	work  string
	procs []*proc
	// treeKey is the tree key every relay holds (--tree-key-file), so
	// that the children's reports and relay streams are taken.
	treeKey string
}

func run(bin string, nAgents int, keep bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	abs, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("relayd binary %s: %w (run make build)", abs, err)
	}
	work, err := os.MkdirTemp("", "relayd-demo-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(work)
	}
	d := &demo{ctx: ctx, bin: abs, work: work}
	defer d.stopAll()
	began := time.Now()
	fmt.Printf("relayd demo: the whole tree on loopback (work dir %s)\n\n", work)

	// The origin's tree, its TUF repository and its first generations.
	root := filepath.Join(work, "origin-tree")
	for p, size := range tree {
		if err := writeRandom(filepath.Join(root, filepath.FromSlash(p)), size, uint64(size)+uint64(len(p))); err != nil {
			return err
		}
	}
	repo, err := d.initRepo(root)
	if err != nil {
		return err
	}
	// The relays' tree key lives apart: --keys signs with every *.key.
	if err := d.cli("keygen", "--tree", "--out", filepath.Join(work, "relay-keys")); err != nil {
		return err
	}
	d.treeKey = filepath.Join(work, "relay-keys", "tree.key")
	g1, err := repo.generation()
	if err != nil {
		return err
	}
	g2 := g1 + 1

	origin := &relay{name: "origin", group: "origin", mode: "origin"}
	if err := d.start(origin, repo.originArgs()...); err != nil {
		return err
	}
	var hq []*relay
	for i := 1; i <= 3; i++ {
		r := &relay{name: fmt.Sprintf("hq-%d", i), group: "hq", mode: "mirror"}
		args := []string{"--upstream", origin.url(), "--root", repo.root}
		if i > 1 {
			args = append(args, "--join", hq[0].gossip)
		}
		if err := d.start(r, args...); err != nil {
			return err
		}
		hq = append(hq, r)
	}
	for _, r := range hq {
		if err := d.waitFor(30*time.Second, fmt.Sprintf("%s to hold generation %d", r.name, g1), func() bool { return generation(ctx, r) == g1 }); err != nil {
			return err
		}
	}
	a1 := &relay{name: "a-1", group: "branch-a", mode: "proxy"}
	a2 := &relay{name: "a-2", group: "branch-a", mode: "proxy"}
	b1 := &relay{name: "b-1", group: "branch-b", mode: "proxy"}
	for _, r := range []*relay{a1, a2, b1} {
		seed := hq[0]
		args := []string{"--root", repo.root}
		if r.group == "branch-a" {
			args = append(args, "--fallback", origin.url())
			if r == a2 {
				args = append(args, "--join", a1.gossip)
			}
		} else {
			seed = hq[1]
		}
		if err := d.start(r, append([]string{"--upstream", seed.url()}, args...)...); err != nil {
			return err
		}
	}
	branches := []*relay{a1, a2, b1}
	all := append(append([]*relay{origin}, hq...), branches...)
	fmt.Printf("%-8s %-9s %-7s %s\n", "relay", "group", "mode", "content URL")
	for _, r := range all {
		fmt.Printf("%-8s %-9s %-7s %s\n", r.name, r.group, r.mode, r.url())
	}

	// Agents: two thirds in branch-a, a third in branch-b, each syncing
	// the first generation at once, then waiting on its relay's event
	// stream.
	nA, nB := nAgents*2/3, nAgents-nAgents*2/3
	fmt.Printf("\n%d agents (TUF clients trusting 1.root.json) sync generation %d (%d via branch-a, %d via branch-b) and keep a push stream open …\n", nAgents, g1, nA, nB)
	lgA, err := d.loadgen("agents-a", a1.url()+","+a2.url(), nA, repo.root)
	if err != nil {
		return err
	}
	lgB, err := d.loadgen("agents-b", b1.url(), nB, repo.root)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := d.waitFor(90*time.Second, fmt.Sprintf("every agent to hold generation %d", g1), func() bool {
		return atNewest(ctx, branches, g1) == nAgents
	}); err != nil {
		return err
	}
	fmt.Printf("all %d agents hold generation %d after %.1fs\n", nAgents, g1, time.Since(t0).Seconds())

	// A relay dies; a new generation is published.
	victim := hq[1]
	_ = victim.p.cmd.Process.Kill()
	_, _ = victim.p.wait()
	fmt.Printf("\nkilled %s (kill -9); publishing generation %d at the origin (a new agent version and a security fix, each signed by its team's key) …\n", victim.name, g2)
	if err := writeRandom(filepath.Join(root, "software/linux-amd64/1.4.3/agent.tar.gz"), 3<<20, 143); err != nil {
		return err
	}
	if err := writeRandom(filepath.Join(root, "security/2026-11/kb-000.patch"), 48<<10, 999); err != nil {
		return err
	}
	published := time.Now()
	if err := repo.publish(d); err != nil {
		return err
	}
	outA, errA := lgA.wait()
	outB, errB := lgB.wait()
	if err := errors.Join(errA, errB); err != nil {
		return err
	}
	lastUpdate := max(lastUpdated(outA), lastUpdated(outB))

	// The summary.
	fmt.Printf("\n%-8s %-9s %12s %14s %12s %10s %8s\n", "relay", "group", "served", "from upstream", "from group", "gen", "agents")
	var servedToAgents, wan, resumes, fallbacks float64
	for _, r := range all {
		if r == victim {
			fmt.Printf("%-8s %-9s %12s\n", r.name, r.group, "(killed)")
			continue
		}
		m := metrics(ctx, r)
		served, up, peer := m["relayd_bytes_served_total"], m["relayd_upstream_bytes_total"], m["relayd_peer_bytes_total"]
		if r == origin {
			wan = served
		}
		if r.mode == "proxy" {
			servedToAgents += served
			resumes += m["relayd_upstream_resumes_total"]
			fallbacks += m["relayd_upstream_fallbacks_total"]
		}
		fmt.Printf("%-8s %-9s %12s %14s %12s %10.0f %8.0f\n", r.name, r.group, mib(served), mib(up), mib(peer), m["relayd_generation"], m["relayd_agents_connected"])
	}
	failA, failB := kv(outA, "failovers"), kv(outB, "failovers")
	fmt.Printf("\nbytes served to agents by the branches: %s; bytes the origin sent (the top WAN link): %s — %.1f%% of it\n",
		mib(servedToAgents), mib(wan), 100*wan/max(servedToAgents, 1))
	fmt.Printf("failovers: %.0f by agents, %.0f transfers resumed by relays on another parent, %.0f requests to a fallback\n",
		failA+failB, resumes, fallbacks)
	if lastUpdate > 0 {
		fmt.Printf("publish → every one of the %d agents holds generation %d: %.2fs (with %s dead)\n",
			nAgents, g2, float64(lastUpdate-published.UnixMilli())/1000, victim.name)
	}
	// The timestamp is re-signed by the origin with its online key, and
	// the relays pass the new one on: their metadata age drops.
	if err := d.waitResign(origin); err != nil {
		return err
	}
	// The tree says what the summary says: the killed relay stopped
	// reporting (stale, then gone), however long ago it was killed; and
	// how old each relay's verified metadata is.
	var tr string
	_ = d.waitFor(15*time.Second, "the tree to show "+victim.name+" stale", func() bool {
		out, err := d.output("tree", "--admin", "http://"+origin.admin)
		tr = out
		h := treeHealth(out, victim.name)
		return err == nil && (h == "stale" || h == "gone")
	})
	if tr != "" {
		fmt.Printf("\nrelayd tree at the origin:\n%s", tr)
	}
	fmt.Printf("\ndone in %.0fs. Logs: %s (removed at exit unless --keep)\n", time.Since(began).Seconds(), work)
	return nil
}

// start runs r with the flags of its role on free loopback ports.
func (d *demo) start(r *relay, args ...string) error {
	r.addr, r.admin = freeAddr(), freeAddr()
	argv := []string{"serve", "--mode", r.mode, "--node", r.name, "--group", r.group, "--listen", r.addr,
		"--admin", r.admin, "--log-format", "json", "--tree-key-file", d.treeKey,
		// Reports every 2 s: the tree shows a dead relay stale within 4 s.
		"--report-interval", "2s"}
	if r.mode == "origin" {
		argv = append(argv, "--gossip=")
	} else {
		r.gossip = freeAddr()
		argv = append(argv, "--gossip", r.gossip, "--data-dir", filepath.Join(d.work, r.name))
	}
	p, err := d.spawn(r.name, append(argv, args...)...)
	if err != nil {
		return err
	}
	r.p = p
	return waitHealthy(d.ctx, r.addr, p)
}

func (d *demo) spawn(name string, args ...string) (*proc, error) {
	p, err := start(d.bin, filepath.Join(d.work, name+".log"), args...)
	if err != nil {
		return nil, err
	}
	d.procs = append(d.procs, p)
	return p, nil
}

func (d *demo) stopAll() {
	for i := len(d.procs) - 1; i >= 0; i-- {
		d.procs[i].stop()
	}
}

// cli runs a relayd command to completion.
func (d *demo) cli(args ...string) error {
	_, err := d.output(args...)
	return err
}

func (d *demo) output(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(d.ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, d.bin, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("relayd %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// loadgen starts n agents against relays; they stop after one update.
func (d *demo) loadgen(name, relays string, n int, root string) (*proc, error) {
	return d.spawn(name, "loadgen", "--relay", relays, "--agents", strconv.Itoa(n), "--root", root, "--watch",
		"--stop-after-updates", "1", "--duration", "150s", "--id-prefix", name+"-", "--concurrency", "64")
}

func (d *demo) waitFor(timeout time.Duration, what string, ok func() bool) error {
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s (logs in %s)", timeout, what, d.work)
		}
		select {
		case <-d.ctx.Done():
			return d.ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// generation is the catalog generation r serves, 0 if none.
func generation(ctx context.Context, r *relay) uint64 {
	var s struct {
		Generation uint64 `json:"generation"`
	}
	b, err := getBody(ctx, "http://"+r.admin+"/v1/status")
	if err != nil || json.Unmarshal([]byte(b), &s) != nil {
		return 0
	}
	return s.Generation
}

// atNewest counts the agents connected to rs that report generation gen.
func atNewest(ctx context.Context, rs []*relay, gen uint64) int {
	n := 0
	for _, r := range rs {
		var doc struct {
			Generation uint64 `json:"generation"`
			AtNewest   int    `json:"at_newest"`
		}
		b, err := getBody(ctx, "http://"+r.admin+"/v1/agents")
		if err == nil && json.Unmarshal([]byte(b), &doc) == nil && doc.Generation == gen {
			n += doc.AtNewest
		}
	}
	return n
}

// metrics reads r's relayd_* series without labels.
func metrics(ctx context.Context, r *relay) map[string]float64 {
	out := map[string]float64{}
	body, err := getBody(ctx, "http://"+r.admin+"/metrics")
	if err != nil {
		return out
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || !strings.HasPrefix(name, "relayd_") || strings.Contains(name, "{") {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			out[name] = f
		}
	}
	return out
}

// lastUpdated is the unix ms at which loadgen's last agent held the new
// generation, 0 if it did not say.
func lastUpdated(out string) int64 {
	for line := range strings.SplitSeq(out, "\n") {
		if _, rest, ok := strings.Cut(line, "last updated at "); ok {
			ms, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return ms
		}
	}
	return 0
}

// kv reads key=value from loadgen's LOADGEN line.
func kv(out, key string) float64 {
	for line := range strings.SplitSeq(out, "\n") {
		if !strings.HasPrefix(line, "LOADGEN ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, key+"="); ok {
				x, _ := strconv.ParseFloat(v, 64)
				return x
			}
		}
	}
	return 0
}

func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

func writeRandom(path string, size int, seed uint64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, 42))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return os.WriteFile(path, b, 0o644)
}

// proc is one process the demo started, its output in a log file.
type proc struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

func start(bin, logPath string, args ...string) (*proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// Killed with the demo if it dies before stopping them.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start relayd: %w", err)
	}
	p := &proc{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	return p, nil
}

// wait waits for the process to exit and returns its output.
func (p *proc) wait() (string, error) {
	<-p.done
	b, _ := os.ReadFile(p.logPath)
	if p.err != nil {
		return string(b), fmt.Errorf("%s: %w\n%s", filepath.Base(p.logPath), p.err, tail(string(b), 20))
	}
	return string(b), nil
}

// stop asks the process to leave (SIGTERM) and kills it if it lingers.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitHealthy polls addr's /-/healthz until it answers, failing at once
// with the end of its log if p exits first.
func waitHealthy(ctx context.Context, addr string, p *proc) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := getBody(ctx, "http://"+addr+"/-/healthz"); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
			if _, err := p.wait(); err != nil {
				return fmt.Errorf("relayd exited before it was healthy: %w", err)
			}
			return errors.New("relayd exited before it was healthy")
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not become healthy (log %s)", addr, p.logPath)
}

func getBody(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", errors.New(resp.Status)
	}
	return string(b), err
}

// treeHealth returns the HEALTH column of node in `relayd tree` output.
func treeHealth(out, node string) string {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && f[0] == node {
			return f[4]
		}
	}
	return ""
}
