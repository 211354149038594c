package e2e

// The staged-rollout tree of issue 15 for the rollout tests: a TUF tree
// with a rollout role, an origin holding a plan, hq (two mirrors), three
// proxy branches in rings 0, 1 and 2, and agents (`relayd agent watch
// --group … --exec …`) whose install command succeeds, fails or waits on
// demand.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/wire"
)

// rolloutSoak is each ring's soak time in the test plan: short, the tests
// poll for the gates that follow.
const rolloutSoak = 2 * time.Second

// rolloutPlan is the origin's plan: branch-a is the canary ring, branch-b
// the early ring, every other group (branch-c) the broad ring. One failed
// agent of one is over max_failures.
var rolloutPlan = fmt.Sprintf(`name: e2e-fleet
rings:
  - {name: canary, groups: ["branch-a"], soak: %s}
  - {name: early, groups: ["branch-b"], soak: %s}
  - {name: broad, groups: ["*"]}
gate: {min_agents: 1, success: 0.95, max_failures: 0.02}
`, rolloutSoak, rolloutSoak)

// ringOfBranch is the ring each branch group is in under rolloutPlan.
var ringOfBranch = map[string]string{"branch-a": "canary", "branch-b": "early", "branch-c": "broad", "branch-d": "broad"}

// rolloutPaths are the tree's objects: every generation changes them all.
// security/ is in the branches' --prefetch-include, software/ is held by
// the agents (so a proxy prefetches its new version).
var rolloutPaths = []string{"security/kb-1.patch", "security/kb-2.patch", "software/agent/app.bin"}

// genFiles is the content of generation gen. Generation 2 and later add
// a path no agent held before (prefetched by --prefetch-include).
func genFiles(gen int) map[string][]byte {
	out := map[string][]byte{}
	for i, p := range rolloutPaths {
		out[p] = makeData(uint64(15000+100*gen+i), 6<<10+i*4000+gen*10)
	}
	if gen >= 2 {
		out[fmt.Sprintf("security/new-%d.patch", gen)] = makeData(uint64(15050+100*gen), 5000)
	}
	return out
}

// rollRelay is one relay of the rollout tree with its data directory.
type rollRelay struct {
	*treeRelay
	group, data string
}

// rollTree is the running rollout tree.
type rollTree struct {
	tree, keys, root, treeKey string
	origin                    *proc
	originAdmin               string
	hq                        []*rollRelay
	branch                    map[string]*rollRelay // by group
	agents                    []*rollAgent
	// top is TestRollout's own t: processes a step starts for the steps
	// after it live as long as it.
	top *testing.T
	// seen are the distinct rollout.json files waitGates read at the
	// origin, oldest first (the replays of the lying relay).
	seen [][]byte
}

// startRolloutTree publishes generation 1 of a tree whose root has a
// rollout role, starts the origin with the plan and the online rollout
// key, hq and the three branches.
func startRolloutTree(t *testing.T) *rollTree {
	t.Helper()
	rt := &rollTree{tree: t.TempDir(), branch: map[string]*rollRelay{}}
	writeFiles(t, rt.tree, genFiles(1))
	rt.keys = tufKeys(t)
	if out, stderr, err := runRelayd(t, 30*time.Second, "keygen", "--role", "rollout", "--out", rt.keys); err != nil {
		t.Fatalf("relayd keygen --role rollout: %v\n%s%s", err, out, stderr)
	}
	if out, stderr, err := runRelayd(t, 30*time.Second, "tuf", "init", rt.tree, "--keys", rt.keys,
		"--rollout-key", filepath.Join(rt.keys, "rollout.pub")); err != nil {
		t.Fatalf("relayd tuf init --rollout-key: %v\n%s%s", err, out, stderr)
	}
	rt.root = filepath.Join(rt.tree, "-", "tuf", "1.root.json")
	publish(t, rt.tree, rt.keys)
	plan := filepath.Join(t.TempDir(), "plan.yaml")
	writeFiles(t, filepath.Dir(plan), map[string][]byte{"plan.yaml": []byte(rolloutPlan)})
	rt.treeKey = treeKeygen(t)
	rt.origin = startRelayd(t, "--mode", "origin", "--node", "origin", "--root", rt.tree, "--data-dir", t.TempDir(),
		"--tree-key-file", rt.treeKey, "--admin", "127.0.0.1:0",
		"--rollout-plan", plan, "--rollout-key", filepath.Join(rt.keys, "rollout.key"))
	rt.originAdmin = "http://" + rt.origin.WaitLogAddr(t, "admin listening")
	common := []string{"--root", rt.root, "--tree-key-file", rt.treeKey, "--mirror-interval", "1s"}
	hq1 := rt.startRelay(t, "hq-1", "hq", "mirror", "", append([]string{"--upstream", rt.origin.URL}, common...)...)
	hq2 := rt.startRelay(t, "hq-2", "hq", "mirror", hq1.gossip, append([]string{"--upstream", rt.origin.URL}, common...)...)
	rt.hq = []*rollRelay{hq1, hq2}
	for _, g := range []string{"branch-a", "branch-b", "branch-c"} {
		node := strings.TrimPrefix(g, "branch-") + "-1"
		rt.branch[g] = rt.startRelay(t, node, g, "proxy", "", append([]string{"--upstream", hq1.URL + "," + hq2.URL,
			"--cache-max", "1GiB", "--prefetch-include", "security/**"}, common...)...)
	}
	ts := readFile(t, timestampFile(rt.tree))
	for _, r := range rt.relays() {
		waitCatalog(t, r.proc, ts, 60*time.Second)
	}
	return rt
}

// startRelay starts a relay of the tree with its own data directory.
func (rt *rollTree) startRelay(t *testing.T, node, group, mode, join string, args ...string) *rollRelay {
	t.Helper()
	data := t.TempDir()
	r := startTreeRelay(t, node, group, mode, join, append(args, "--data-dir", data)...)
	return &rollRelay{treeRelay: r, group: group, data: data}
}

// relays are every relay of the tree below the origin.
func (rt *rollTree) relays() []*rollRelay {
	out := append([]*rollRelay(nil), rt.hq...)
	for _, g := range []string{"branch-a", "branch-b", "branch-c"} {
		out = append(out, rt.branch[g])
	}
	return out
}

// publishGen writes generation gen's content and publishes it.
func (rt *rollTree) publishGen(t *testing.T, gen int) {
	t.Helper()
	writeFiles(t, rt.tree, genFiles(gen))
	publish(t, rt.tree, rt.keys)
	if g := tsGeneration(readFile(t, timestampFile(rt.tree))); g != uint64(gen) {
		t.Fatalf("the publish wrote generation %d, want %d", g, gen)
	}
}

// rollAgent is one `relayd agent watch` with its install command.
type rollAgent struct {
	*proc
	id, group, dir string
}

// installScript is each agent's --exec command, for generation G: it
// waits while DIR/hold-G exists (bounded by the agent's --exec-timeout),
// fails while DIR/fail-G exists (the reason on stderr), and otherwise
// records G in DIR/installed. Per generation, because the agent runs it
// after every sync, also one that changed nothing.
const installScript = `#!/bin/sh
d=$(dirname "$0")
while [ -e "$d/hold-$RELAYD_GENERATION" ]; do sleep 0.05; done
if [ -e "$d/fail-$RELAYD_GENERATION" ]; then
  echo "install of generation $RELAYD_GENERATION failed: service did not restart" >&2
  exit 3
fi
echo "$RELAYD_GENERATION" >>"$d/installed"
`

// newAgentDir makes an agent's directory with its install script, and
// the marker files named in marks (hold-G, fail-G).
func newAgentDir(t *testing.T, marks ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "install.sh"), []byte(installScript), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, m := range marks {
		setMark(t, dir, m, true)
	}
	return dir
}

// setMark creates or removes the marker file name in an agent directory.
func setMark(t *testing.T, dir, name string, on bool) {
	t.Helper()
	p := filepath.Join(dir, name)
	if !on {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return
	}
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// agentArgs are the flags of an agent of group (none if empty) against
// relay, installing into dir/out with dir/install.sh.
func (rt *rollTree) agentArgs(id, group, relay, dir string) []string {
	args := []string{"--relay", relay, "--root", rt.root, "--out", filepath.Join(dir, "out"), "--id", id,
		"--exec", filepath.Join(dir, "install.sh"), "--exec-timeout", "2m", "--retry-budget", "5s"}
	if group != "" {
		args = append(args, "--group", group)
	}
	return args
}

// startAgent starts `relayd agent watch` for group below relay, one of
// the tree's agents (counted by the compliance checks).
func (rt *rollTree) startAgent(t *testing.T, id, group, relay, dir string) *rollAgent {
	t.Helper()
	a := rt.newAgent(t, id, group, relay, dir)
	rt.agents = append(rt.agents, a)
	return a
}

// newAgent starts `relayd agent watch` for group below relay.
func (rt *rollTree) newAgent(t *testing.T, id, group, relay, dir string) *rollAgent {
	t.Helper()
	argv := append([]string{relaydBin, "agent", "watch", "--sync-jitter", "0", "--log-level", "info"}, rt.agentArgs(id, group, relay, dir)...)
	return &rollAgent{proc: startProc(t, "agent-"+id, argv, nil, dir), id: id, group: group, dir: dir}
}

// installed is the newest generation the agent's install command
// recorded (0: none yet).
func (a *rollAgent) installed() uint64 {
	return installedIn(a.dir)
}

func installedIn(dir string) uint64 {
	b, err := os.ReadFile(filepath.Join(dir, "installed"))
	if err != nil {
		return 0
	}
	var top uint64
	for f := range strings.FieldsSeq(string(b)) {
		if g, err := strconv.ParseUint(f, 10, 64); err == nil && g > top {
			top = g
		}
	}
	return top
}

// holds reports whether the agent's output directory holds exactly
// generation gen's version of every path of rolloutPaths.
func holdsGen(dir string, gen int) error {
	for _, p := range rolloutPaths {
		b, err := os.ReadFile(filepath.Join(dir, "out", filepath.FromSlash(p)))
		if err != nil {
			return err
		}
		if want := genFiles(gen)[p]; sha(b) != sha(want) {
			return fmt.Errorf("%s is not generation %d's (%d bytes)", p, gen, len(b))
		}
	}
	return nil
}

// waitInstalled waits until every agent installed generation gen and its
// directory holds it.
func waitInstalled(t *testing.T, agents []*rollAgent, gen int, timeout time.Duration) {
	t.Helper()
	for _, a := range agents {
		eventually(t, timeout, fmt.Sprintf("agent %s (%s) to install generation %d", a.id, a.group, gen), func() error {
			if a.Exited() {
				return stopErr{Err: fmt.Errorf("agent %s exited: %v", a.id, a.WaitErr())}
			}
			if g := a.installed(); g != uint64(gen) {
				return fmt.Errorf("installed generation %d", g)
			}
			return holdsGen(a.dir, gen)
		})
	}
}

// stayOn checks, for d, that every agent's newest install is generation
// gen and its directory holds it.
func stayOn(t *testing.T, agents []*rollAgent, gen int, d time.Duration, what string) {
	t.Helper()
	consistently(t, d, what, func() error {
		for _, a := range agents {
			if g := a.installed(); g != uint64(gen) {
				return fmt.Errorf("agent %s (%s) installed generation %d, want %d", a.id, a.group, g, gen)
			}
			if err := holdsGen(a.dir, gen); err != nil {
				return fmt.Errorf("agent %s (%s): %v", a.id, a.group, err)
			}
		}
		return nil
	})
}

// signedGates is what the tests read of a rollout.json (not verified:
// the relays and agents under test do that).
type signedGates struct {
	Signed struct {
		Version int64      `json:"version"`
		Expires time.Time  `json:"expires"`
		Gates   wire.Gates `json:"relayd_rollout"`
	} `json:"signed"`
}

// gatesAt is the rollout.json a node serves and its parsed form.
func gatesAt(c *http.Client, url string) ([]byte, *signedGates, error) {
	r, err := tryGet(c, http.MethodGet, url+wire.TUFPath(wire.GatesName))
	if err != nil {
		return nil, nil, err
	}
	if r.status != http.StatusOK {
		return nil, nil, fmt.Errorf("%s: status %d %s", wire.GatesName, r.status, truncate(r.body))
	}
	var g signedGates
	if err := json.Unmarshal(r.body, &g); err != nil {
		return r.body, nil, fmt.Errorf("%s: %v", wire.GatesName, err)
	}
	return r.body, &g, nil
}

// openAt is each ring's open generation, by ring name.
func (g *signedGates) openAt() map[string]uint64 {
	out := map[string]uint64{}
	for _, r := range g.Signed.Gates.Rings {
		out[r.Name] = r.Open.Version
	}
	return out
}

// waitGates waits until the origin's gates open each named ring at the
// given generation and returns them.
func (rt *rollTree) waitGates(t *testing.T, want map[string]uint64, timeout time.Duration) *signedGates {
	t.Helper()
	c := newClient()
	var got *signedGates
	eventually(t, timeout, fmt.Sprintf("the origin's gates at %v", want), func() error {
		raw, g, err := gatesAt(c, rt.origin.URL)
		if err != nil {
			return err
		}
		if n := len(rt.seen); n == 0 || !bytes.Equal(rt.seen[n-1], raw) {
			rt.seen = append(rt.seen, raw)
		}
		open := g.openAt()
		for ring, gen := range want {
			if open[ring] != gen {
				return fmt.Errorf("rings open at %v (halted %v %q)", open, g.Signed.Gates.Halted, g.Signed.Gates.Reason)
			}
		}
		got = g
		return nil
	})
	return got
}

// agentsOf are the tree's agents of the given groups.
func (rt *rollTree) agentsOf(groups ...string) []*rollAgent {
	var out []*rollAgent
	for _, a := range rt.agents {
		for _, g := range groups {
			if a.group == g {
				out = append(out, a)
			}
		}
	}
	return out
}

// missingBlobs lists the paths of generation gen whose bytes are not in
// a relay's blob store.
func missingBlobs(t *testing.T, r *rollRelay, gen int) []string {
	t.Helper()
	have := blobNames(t, r.data)
	var out []string
	for p, b := range genFiles(gen) {
		if !have[sha(b)] {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}
