package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// complianceDoc is the part of /v1/compliance the tests read.
type complianceDoc struct {
	Newest uint64 `json:"newest"`
	Total  struct {
		Agents int `json:"agents"`
	} `json:"total"`
	Groups []struct {
		Name         string `json:"name"`
		Target       uint64 `json:"target"`
		Relays       int    `json:"relays"`
		Agents       int    `json:"agents"`
		OnTarget     int    `json:"on_target"`
		Behind       int    `json:"behind"`
		Failed       int    `json:"failed"`
		NotReporting int    `json:"not_reporting"`
		Reasons      []struct {
			Reason string `json:"reason"`
			Count  int    `json:"count"`
		} `json:"reasons"`
	} `json:"groups"`
}

// groupLine is one group's counts as the test compares them.
func (d complianceDoc) groupLine(name string) string {
	for _, g := range d.Groups {
		if g.Name == name {
			var rs []string
			for _, r := range g.Reasons {
				rs = append(rs, fmt.Sprintf("%d×%s", r.Count, r.Reason))
			}
			return fmt.Sprintf("target %d agents %d on_target %d behind %d failed %d not_reporting %d reasons [%s]",
				g.Target, g.Agents, g.OnTarget, g.Behind, g.Failed, g.NotReporting, strings.Join(rs, "; "))
		}
	}
	return "absent"
}

// Agents with --exec report their installs to their branch relay, the
// branch relays carry the counts up in their reports, and `relayd
// compliance` at the parent shows them per group; the branch relays refuse
// hostile outcomes, and one address making up 10,000 agent ids fills only
// its share of a relay's table.
func TestOutcomesAndComplianceAtTheParent(t *testing.T) {
	t.Parallel()
	tree, _, root := publishedTree(t, map[string][]byte{"software/app/1.0/app.tgz": makeData(1501, 20<<10)})
	tk := treeKeygen(t)
	origin := startRelayd(t, "--mode", "origin", "--root", tree, "--node", "origin", "--tree-key-file", tk)
	relay := func(node, group, upstream string, args ...string) (*proc, string) {
		p := startRelayd(t, append([]string{"--mode", "proxy", "--node", node, "--group", group, "--upstream", upstream, "--root", root,
			"--data-dir", t.TempDir(), "--tree-key-file", tk, "--admin", "127.0.0.1:0", "--report-interval", "1s"}, args...)...)
		return p, "http://" + p.WaitLogAddr(t, "admin listening")
	}
	hq, hqAdmin := relay("hq-1", "hq", origin.URL)
	a, _ := relay("a-1", "branch-a", hq.URL)
	b, _ := relay("b-1", "branch-b", hq.URL)
	c, cAdmin := relay("c-1", "branch-c", hq.URL, "--events-per-addr", "50", "--outcome-agents", "1000")

	agent := func(relay, id, group, exec string) {
		t.Helper()
		args := []string{"agent", "sync", "--quiet", "--relay", relay, "--root", root, "--out", t.TempDir(), "--id", id, "--group", group}
		if exec != "" {
			args = append(args, "--exec", exec)
		}
		out, stderr, err := runRelayd(t, 60*time.Second, args...)
		if failed := strings.Contains(out, "failed"); (err != nil) != failed {
			t.Fatalf("agent %s (--exec %q): %v\n%s%s", id, exec, err, out, stderr)
		}
	}
	for i := range 3 {
		agent(a.URL, fmt.Sprint("a-agent-", i), "branch-a", "true")
	}
	agent(a.URL, "a-agent-plain", "branch-a", "") // no --exec: a completed sync is installed
	agent(b.URL, "b-agent-0", "branch-b", "false")
	agent(b.URL, "b-agent-1", "branch-b", "false")
	agent(b.URL, "b-agent-2", "branch-b", `echo "  disk full on C:" >&2; exit 4`)
	agent(b.URL, "b-agent-3", "branch-b", `test "$RELAYD_GENERATION" = 1`)

	// Hostile outcomes at a branch relay.
	cl := newClient()
	post := func(base, body string) int {
		req, _ := http.NewRequest(http.MethodPost, base+"/-/outcome", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := cl.Do(req)
		if err != nil {
			t.Errorf("post: %v", err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{"oversized", `{"agent":"x","generation":1,"state":"failed","reason":"` + strings.Repeat("r", 8<<10) + `"}`, http.StatusRequestEntityTooLarge},
		{"bad state", `{"agent":"x","generation":1,"state":"rebooted"}`, http.StatusBadRequest},
		{"long reason", `{"agent":"x","generation":1,"state":"failed","reason":"` + strings.Repeat("r", 201) + `"}`, http.StatusBadRequest},
		{"unknown field", `{"agent":"x","generation":1,"state":"installed","admin":true}`, http.StatusBadRequest},
	} {
		if got := post(b.URL, tc.body); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	// 10,000 made-up agents from one address: its share (events-per-addr
	// 50) is taken, the rest get 429. Bounded: 8 at a time, within 90 s.
	var accepted, limited, other atomic.Int64
	var next atomic.Int64
	deadline := time.Now().Add(90 * time.Second)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= 10_000 && time.Now().Before(deadline); i = next.Add(1) {
				switch post(c.URL, fmt.Sprintf(`{"agent":"fake-%d","generation":1,"state":"installed"}`, i)) {
				case http.StatusAccepted:
					accepted.Add(1)
				case http.StatusTooManyRequests:
					limited.Add(1)
				default:
					other.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if accepted.Load() != 50 || other.Load() != 0 || limited.Load() < 1000 {
		t.Errorf("flood: %d accepted, %d limited, %d other; want 50 accepted, the rest 429", accepted.Load(), limited.Load(), other.Load())
	}

	// An agent holding an event stream is known before it reports.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watcher := startStreamGet(ctx, newClient(), a.URL+"/-/events?agent=watcher-1&generation=1")
	defer func() { cancel(); <-watcher.done }()

	wantGroups := map[string]string{
		"branch-a": "target 1 agents 5 on_target 4 behind 0 failed 0 not_reporting 1 reasons []",
		"branch-b": "target 1 agents 4 on_target 1 behind 0 failed 3 not_reporting 0 reasons [2×exit 1; 1×exit 4: disk full on C:]",
		"branch-c": "target 1 agents 50 on_target 50 behind 0 failed 0 not_reporting 0 reasons []",
	}
	var doc complianceDoc
	eventually(t, 30*time.Second, "the parent's compliance shows every branch", func() error {
		out, stderr, err := runRelayd(t, 10*time.Second, "compliance", "--admin", hqAdmin, "--json")
		if err != nil {
			return fmt.Errorf("relayd compliance: %v: %s", err, stderr)
		}
		doc = complianceDoc{}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			return err
		}
		for g, want := range wantGroups {
			if got := doc.groupLine(g); got != want {
				return fmt.Errorf("%s: %s\nwant %s", g, got, want)
			}
		}
		return nil
	})
	// The table, for people.
	out, stderr, err := runRelayd(t, 10*time.Second, "compliance", "--admin", hqAdmin)
	if err != nil {
		t.Fatalf("relayd compliance: %v: %s", err, stderr)
	}
	for _, want := range []string{"no rollout gates", "branch-a", "4 (80 %)", "branch-b", "1 (25 %)", "2 × exit 1", "TOTAL"} {
		if !strings.Contains(out, want) {
			t.Errorf("relayd compliance table lacks %q:\n%s", want, out)
		}
	}
	// The flooded relay's own view, and its gauges.
	out, _, err = runRelayd(t, 10*time.Second, "compliance", "--admin", cAdmin, "--json")
	if err != nil || !strings.Contains(out, `"agents":50`) {
		t.Errorf("branch-c's compliance: %v\n%s", err, out)
	}
	resp := get(t, cl, http.MethodGet, cAdmin+"/metrics")
	if !strings.Contains(string(resp.body), `relayd_compliance_agents{ring="",state="on_target"} 50`) {
		t.Errorf("branch-c metrics lack the on_target gauge:\n%s", grepLines(string(resp.body), "relayd_compliance"))
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
