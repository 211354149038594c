package e2e

// Staged rollouts end to end (issue 15, "How it is checked"): origin → hq
// (two mirrors) → branch-a, branch-b, branch-c (proxies) in rings canary,
// early and broad, with `relayd agent watch --group … --exec …` agents.
// The subtests run in order on one tree: each starts from the state the
// previous one left.

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRollout(t *testing.T) {
	t.Parallel()
	rt := startRolloutTree(t)
	rt.startAgent(t, "a-1", "branch-a", rt.branch["branch-a"].URL, newAgentDir(t))
	rt.startAgent(t, "b-1", "branch-b", rt.branch["branch-b"].URL, newAgentDir(t))
	rt.startAgent(t, "b-2", "branch-b", rt.branch["branch-b"].URL, newAgentDir(t))
	rt.startAgent(t, "c-1", "branch-c", rt.branch["branch-c"].URL, newAgentDir(t))
	rt.startAgent(t, "c-2", "branch-c", rt.branch["branch-c"].URL, newAgentDir(t))
	// Generation 1 reaches every ring (at once, or ring by ring as the
	// canary succeeds).
	waitInstalled(t, rt.agents, 1, 90*time.Second)

	rt.top = t
	// A step that moves the rollout is "needed": when it fails, the steps
	// after it would start from a state they do not expect.
	steps := []struct {
		name   string
		run    func(*testing.T, *rollTree)
		needed bool
	}{
		{"PrepositionThenRelease", checkPrepositionThenRelease, true},
		{"Compliance", func(t *testing.T, rt *rollTree) { checkCompliance(t, rt, 2) }, false},
		{"CanaryFailureHalts", checkCanaryFailureHalts, true},
		{"JoiningRelay", checkJoiningRelay, false},
		{"LyingRelayRefused", checkLyingRelay, false},
		{"PromoteAfterFix", checkPromoteAfterFix, true},
		{"ComplianceAfterPromote", func(t *testing.T, rt *rollTree) { checkCompliance(t, rt, 3) }, false},
	}
	for _, s := range steps {
		if !t.Run(s.name, func(t *testing.T) { s.run(t, rt) }) && s.needed {
			t.Fatalf("%s failed: the steps after it start from its end state, so they are not run", s.name)
		}
	}
}

// checkJoiningRelay: while ring broad is held at generation 2 (the newest
// is 3, the rollout halted), a new relay joins below hq in group
// branch-d (ring broad by its "*" pattern), with a new agent: the agent
// installs generation 2 through it (the pinned snapshot and the objects
// by consistent name, which the new relay never held). Both stay for the
// steps after (the compliance counts them).
func checkJoiningRelay(t *testing.T, rt *rollTree) {
	hq := rt.hq[0].URL + "," + rt.hq[1].URL
	r := rt.startRelay(rt.top, "d-1", "branch-d", "proxy", "", "--upstream", hq, "--root", rt.root, "--tree-key-file", rt.treeKey,
		"--mirror-interval", "1s", "--cache-max", "1GiB", "--prefetch-include", "security/**")
	rt.branch["branch-d"] = r
	waitCatalog(t, r.proc, readFile(t, timestampFile(rt.tree)), 60*time.Second)
	a := rt.startAgent(rt.top, "d-1", "branch-d", r.URL, newAgentDir(rt.top))
	waitInstalled(t, []*rollAgent{a}, 2, 60*time.Second)
}

// checkPrepositionThenRelease: after a publish ring 0's agents update;
// the relays of rings 1 and 2 hold every object of the new generation on
// disk while their agents stay on the old one; ring 0 reports success →
// after the soak ring 1 opens by itself, then ring 2; from the moment the
// tree holds the generation (before ring 1 opens) no object byte leaves
// the origin, nor hq towards the branches.
func checkPrepositionThenRelease(t *testing.T, rt *rollTree) {
	canary, early, broad := rt.agentsOf("branch-a"), rt.agentsOf("branch-b"), rt.agentsOf("branch-c")
	for _, a := range canary {
		setMark(t, a.dir, "hold-2", true) // the canary's install waits: ring 0 reports no success yet
	}
	rt.publishGen(t, 2)
	rt.waitGates(t, map[string]uint64{"canary": 2, "early": 1, "broad": 1}, 30*time.Second)
	for _, a := range canary {
		eventually(t, 60*time.Second, "canary agent "+a.id+" to download generation 2", func() error { return holdsGen(a.dir, 2) })
	}
	for _, r := range rt.relays() {
		eventually(t, 60*time.Second, r.node+" to hold every object of generation 2 on disk", func() error {
			if m := missingBlobs(t, r, 2); len(m) > 0 {
				return fmt.Errorf("missing %v", m)
			}
			return nil
		})
	}
	stayOn(t, append(early, broad...), 1, 2*rolloutSoak, "rings early and broad on generation 1 while the canary installs")
	rt.waitGates(t, map[string]uint64{"canary": 2, "early": 1, "broad": 1}, time.Second)
	originBefore, hqBefore := objectGets(rt.origin.Log()), objectGets(rt.hq[0].Log()+rt.hq[1].Log())

	released := time.Now()
	for _, a := range canary {
		setMark(t, a.dir, "hold-2", false)
	}
	waitInstalled(t, canary, 2, 30*time.Second)
	g := rt.waitGates(t, map[string]uint64{"early": 2}, 60*time.Second)
	since := map[string]time.Time{}
	for _, r := range g.Signed.Gates.Rings {
		since[r.Name] = r.Since
	}
	if open := g.openAt(); open["broad"] != 1 {
		t.Errorf("ring broad opened with ring early: rings at %v", open)
	}
	// The gates' times may be cut to the second: a second of slack.
	if d := since["early"].Sub(released); d < rolloutSoak-time.Second {
		t.Errorf("ring early opened %v after the canary's install was released, before the %v soak", d, rolloutSoak)
	}
	waitInstalled(t, early, 2, 30*time.Second)
	g = rt.waitGates(t, map[string]uint64{"broad": 2}, 60*time.Second)
	for _, r := range g.Signed.Gates.Rings {
		if r.Name == "broad" && r.Since.Sub(since["early"]) < rolloutSoak-time.Second {
			t.Errorf("ring broad opened %v after ring early, before the %v soak", r.Since.Sub(since["early"]), rolloutSoak)
		}
	}
	waitInstalled(t, broad, 2, 30*time.Second)

	if d := diffCounts(originBefore, objectGets(rt.origin.Log())); len(d) > 0 {
		t.Errorf("the origin served objects after the tree held generation 2 (gates opening): %v", d)
	}
	if d := diffCounts(hqBefore, objectGets(rt.hq[0].Log()+rt.hq[1].Log())); len(d) > 0 {
		t.Errorf("hq served objects to the branches after they held generation 2 (gates opening): %v", d)
	}
}

// checkCanaryFailureHalts: generation 3's install fails on the canary:
// the rollout halts, rings early and broad stay on generation 2 past
// their soak, and `relayd rollout status`, GET /v1/rollout and /metrics
// at the origin say why; hq shows the same halted gates and refuses to
// promote (not the origin).
func checkCanaryFailureHalts(t *testing.T, rt *rollTree) {
	canary, later := rt.agentsOf("branch-a"), rt.agentsOf("branch-b", "branch-c")
	for _, a := range canary {
		setMark(t, a.dir, "fail-3", true)
	}
	rt.publishGen(t, 3)
	c := newClient()
	var g *signedGates
	eventually(t, 60*time.Second, "the rollout to halt on the canary's failure", func() error {
		_, got, err := gatesAt(c, rt.origin.URL)
		if err != nil {
			return err
		}
		if !got.Signed.Gates.Halted {
			return fmt.Errorf("not halted; rings at %v", got.openAt())
		}
		g = got
		return nil
	})
	reason := g.Signed.Gates.Reason
	if !strings.Contains(reason, "canary") || !strings.Contains(reason, "service did not restart") {
		t.Errorf("halt reason %q: want the ring (canary) and the top failure reason", reason)
	}
	stayOn(t, later, 2, 3*rolloutSoak, "rings early and broad on generation 2 while halted")
	if open := rt.waitGates(t, map[string]uint64{"canary": 3, "early": 2, "broad": 2}, time.Second).openAt(); open["early"] != 2 {
		t.Errorf("rings at %v while halted", open)
	}

	out, stderr, err := runRelayd(t, 10*time.Second, "rollout", "status", "--admin", rt.originAdmin)
	if err != nil || !strings.Contains(strings.ToLower(out), "halted") || !strings.Contains(out, "canary") {
		t.Errorf("relayd rollout status: %v %s\n%s\nwant halted and the canary named", err, stderr, out)
	}
	api := get(t, c, http.MethodGet, rt.originAdmin+"/v1/rollout")
	if api.status != http.StatusOK || !strings.Contains(string(api.body), `"halted":true`) ||
		!strings.Contains(string(api.body), "service did not restart") {
		t.Errorf("GET /v1/rollout at the origin: %d %s\nwant halted with its reason", api.status, truncate(api.body))
	}
	m := get(t, c, http.MethodGet, rt.originAdmin+"/metrics").body
	if v, ok := metric(m, "relayd_rollout_halted"); !ok || v != 1 {
		t.Errorf("origin relayd_rollout_halted = %v (present %v), want 1", v, ok)
	}
	hq := get(t, c, http.MethodGet, rt.hq[0].admin+"/v1/rollout")
	if hq.status != http.StatusOK || !strings.Contains(string(hq.body), `"halted":true`) {
		t.Errorf("GET /v1/rollout at hq-1: %d %s\nwant the held gates, halted", hq.status, truncate(hq.body))
	}
	wantJSONError(t, send(t, c, http.MethodPost, rt.hq[0].admin+"/v1/rollout/promote", `{}`, "Content-Type", "application/json"),
		http.StatusConflict, "not_origin", "POST /v1/rollout/promote at hq-1")
}

// checkPromoteAfterFix: the canary's install is fixed and re-run (a new
// agent with the same id installs generation 3 and reports it); `relayd
// rollout resume` then `relayd rollout promote` open ring early, and
// ring broad follows.
func checkPromoteAfterFix(t *testing.T, rt *rollTree) {
	var canary, kept []*rollAgent
	for _, a := range rt.agents {
		if a.group != "branch-a" {
			kept = append(kept, a)
			continue
		}
		a.Stop(t, 5*time.Second)
		canary = append(canary, rt.newAgent(rt.top, a.id, a.group, rt.branch[a.group].URL, newAgentDir(rt.top)))
	}
	rt.agents = append(kept, canary...)
	waitInstalled(t, canary, 3, 60*time.Second)
	for _, cmd := range [][]string{{"rollout", "resume"}, {"rollout", "promote"}} {
		out, stderr, err := runRelayd(t, 10*time.Second, append(cmd, "--admin", rt.originAdmin)...)
		if err != nil {
			t.Fatalf("relayd %s: %v\n%s%s", strings.Join(cmd, " "), err, out, stderr)
		}
	}
	g := rt.waitGates(t, map[string]uint64{"canary": 3, "early": 3}, 30*time.Second)
	if g.Signed.Gates.Halted {
		t.Errorf("still halted after resume: %q", g.Signed.Gates.Reason)
	}
	waitInstalled(t, rt.agentsOf("branch-b"), 3, 30*time.Second)
	rt.waitGates(t, map[string]uint64{"broad": 3}, 60*time.Second)
	waitInstalled(t, rt.agentsOf("branch-c"), 3, 30*time.Second)
}
