package main

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// level names, top of the tree first.
var levelNames = [4]string{"origin", "top", "region", "branch"}

// group is one relay group of the fleet.
type group struct {
	name   string
	level  int // 0 origin … 3 branch
	relays []*relay
	parent *group
	ns     *nsLink // the branch's namespace with --netns, else nil
}

// relay is one relayd process.
type relay struct {
	name, mode string
	g          *group
	addr       string // content address
	admin      string
	gossip     string
	p          *proc
	killed     bool
	// Last samples (taken before a kill and at the end).
	metrics map[string]float64
	proc    procSample
}

func (r *relay) url() string { return "http://" + r.addr }

func (g *group) urls() string {
	var u []string
	for _, r := range g.relays {
		u = append(u, r.url())
	}
	return strings.Join(u, ",")
}

func (g *group) alive() int {
	n := 0
	for _, r := range g.relays {
		if !r.killed {
			n++
		}
	}
	return n
}

// layout makes the groups of the fleet: one origin, one top group, the
// regional relays in groups of groupSize under the top group, the branch
// relays in groups of groupSize spread over the regional groups.
func layout(counts [4]int, groupSize int) [][]*group {
	levels := make([][]*group, 4)
	levels[0] = []*group{{name: "origin", level: 0}}
	levels[0][0].relays = []*relay{{name: "origin", mode: "origin", g: levels[0][0]}}
	top := &group{name: "top", level: 1, parent: levels[0][0]}
	for i := range counts[1] {
		top.relays = append(top.relays, &relay{name: fmt.Sprintf("top-%d", i+1), mode: "mirror", g: top})
	}
	levels[1] = []*group{top}
	for lv, mode := range map[int]string{2: "mirror", 3: "proxy"} {
		for i := range counts[lv] {
			gi := i / groupSize
			if gi == len(levels[lv]) {
				levels[lv] = append(levels[lv], &group{name: fmt.Sprintf("%s-%d", levelNames[lv], gi+1), level: lv})
			}
			g := levels[lv][gi]
			g.relays = append(g.relays, &relay{name: fmt.Sprintf("%s-%d", g.name, len(g.relays)+1), mode: mode, g: g})
		}
	}
	for _, g := range levels[2] {
		g.parent = top
	}
	for i, g := range levels[3] {
		g.parent = levels[2][i%len(levels[2])]
	}
	return levels
}

// trust is how relays and agents are told what to trust: the TUF root
// (relayd with --root) or, with a relayd from before the TUF switch, the
// catalog public key (--pubkey).
type trust struct {
	tuf  bool
	keys string // key directory
	// flags relays (below the origin) and agents get.
	flags []string
}

// detectTrust asks the binary's loadgen usage which trust flag it takes.
func detectTrust(ctx context.Context, bin string) bool {
	out, _ := exec.CommandContext(ctx, bin, "loadgen", "-h").CombinedOutput()
	return strings.Contains(string(out), "-root")
}

// loadgenHas says whether relayd loadgen knows flag (e.g. sync-jitter).
func loadgenHas(ctx context.Context, bin, flag string) bool {
	out, _ := exec.CommandContext(ctx, bin, "loadgen", "-h").CombinedOutput()
	return strings.Contains(string(out), "-"+flag+" ")
}

// cli runs a relayd command to completion (at most a minute).
func (f *fleet) cli(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(f.ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, f.bin, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("relayd %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// setupTrust makes the keys and the trust the tree is published with.
func (f *fleet) setupTrust() error {
	keys := filepath.Join(f.root, "keys")
	f.trust = trust{tuf: detectTrust(f.ctx, f.bin), keys: keys}
	if f.trust.tuf {
		for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
			if _, err := f.cli("keygen", "--role", role, "--out", keys); err != nil {
				return err
			}
		}
		if _, err := f.cli("tuf", "init", f.tree, "--keys", keys); err != nil {
			return err
		}
		f.trust.flags = []string{"--root", filepath.Join(f.tree, "-", "tuf", "1.root.json")}
	} else {
		if _, err := f.cli("keygen", "--out", keys); err != nil {
			return err
		}
		f.trust.flags = []string{"--pubkey", filepath.Join(keys, "catalog.pub")}
	}
	// The relays' own secrets live apart: publish --keys DIR signs with
	// every *.key of DIR.
	if _, err := f.cli("keygen", "--tree", "--out", f.secrets()); err != nil {
		return err
	}
	tok := make([]byte, 18)
	_, _ = crand.Read(tok)
	adminToken = base64.RawURLEncoding.EncodeToString(tok)
	return os.WriteFile(filepath.Join(f.secrets(), "admin.token"), []byte(adminToken+"\n"), 0o600)
}

// secrets is the directory of the tree key and the admin token.
func (f *fleet) secrets() string { return filepath.Join(f.root, "relay-secrets") }

// publish writes generation n's files into the tree and publishes it,
// returning when the publish started and ended.
func (f *fleet) publish(n int) (time.Time, time.Time, error) {
	changed := f.cfg.objects
	if n > 1 {
		changed = max(1, f.cfg.objects*f.cfg.changePct/100)
	}
	for i := range changed {
		p := filepath.Join(f.tree, "software", fmt.Sprintf("pkg-%03d", i), fmt.Sprintf("gen-%d.bin", n))
		if n == 1 {
			p = filepath.Join(f.tree, "software", fmt.Sprintf("pkg-%03d", i), "base.bin")
		}
		if err := writeRandom(p, f.cfg.objectSize, uint64(n)<<32|uint64(i)); err != nil {
			return time.Time{}, time.Time{}, err
		}
		f.objectBytes += int64(f.cfg.objectSize)
		f.objects++
	}
	// What the agents sync: one small object a generation.
	if err := writeRandom(filepath.Join(f.tree, "agents", fmt.Sprintf("config-%d.bin", n)), f.cfg.agentBytes, uint64(n)); err != nil {
		return time.Time{}, time.Time{}, err
	}
	f.objectBytes += int64(f.cfg.agentBytes)
	f.objects++
	args := []string{"publish", "--dir", f.tree, "--key", filepath.Join(f.trust.keys, "catalog.key")}
	if f.trust.tuf {
		args = []string{"publish", f.tree, "--keys", f.trust.keys}
	}
	began := time.Now()
	_, err := f.cli(args...)
	return began, time.Now(), err
}

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

// relayStatus is what the simulator reads of a relay's /v1/status.
type relayStatus struct {
	Generation uint64 `json:"generation"`
	Agents     int64  `json:"agents"` // agents holding a push stream
}

// status reads r's /v1/status; zero if it does not answer.
func (f *fleet) status(r *relay) relayStatus {
	var s relayStatus
	b, err := getBody(f.ctx, "http://"+r.admin+"/v1/status")
	if err != nil || json.Unmarshal(b, &s) != nil {
		return relayStatus{}
	}
	return s
}

// generation is the generation r serves, 0 if it does not answer.
func (f *fleet) generation(r *relay) uint64 { return f.status(r).Generation }

// atGeneration counts the agents on the branch relays that hold gen.
func (f *fleet) atGeneration(gen uint64) int {
	n := 0
	for _, g := range f.levels[3] {
		for _, r := range g.relays {
			if r.killed {
				continue
			}
			var doc struct {
				Generation uint64 `json:"generation"`
				AtNewest   int    `json:"at_newest"`
			}
			b, err := getBody(f.ctx, "http://"+r.admin+"/v1/agents")
			if err == nil && json.Unmarshal(b, &doc) == nil && doc.Generation == gen {
				n += doc.AtNewest
			}
		}
	}
	return n
}

// scrape reads r's relayd_* series without labels and /proc.
func (f *fleet) scrape(r *relay) {
	if r.killed || r.p == nil || r.p.exited() {
		return
	}
	if s, err := sampleProc(r.p.cmd.Process.Pid); err == nil {
		r.proc = s
	}
	body, err := getBody(f.ctx, "http://"+r.admin+"/metrics")
	if err != nil {
		return
	}
	m := map[string]float64{}
	for line := range strings.SplitSeq(string(body), "\n") {
		name, v, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(name, "relayd_") || strings.Contains(name, "{") {
			continue
		}
		if x, err := strconv.ParseFloat(v, 64); err == nil {
			m[name] = x
		}
	}
	r.metrics = m
}

func (f *fleet) scrapeAll() {
	for _, r := range f.relays() {
		f.scrape(r)
	}
}

// relays lists every relay, the origin first.
func (f *fleet) relays() []*relay {
	var out []*relay
	for _, lv := range f.levels {
		for _, g := range lv {
			out = append(out, g.relays...)
		}
	}
	return out
}

// pickKills chooses up to k relays below the origin at random, never the
// last live relay of a group (a group gone whole is another test).
func (f *fleet) pickKills(k int, rng *rand.Rand) []*relay {
	var cand []*relay
	for _, r := range f.relays()[1:] {
		cand = append(cand, r)
	}
	rng.Shuffle(len(cand), func(i, j int) { cand[i], cand[j] = cand[j], cand[i] })
	var out []*relay
	for _, r := range cand {
		if len(out) == k {
			break
		}
		if r.g.alive() > 1 {
			r.killed = true
			out = append(out, r)
		}
	}
	return out
}
