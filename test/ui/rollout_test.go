package ui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/relayd/relayd/internal/proctest"
)

// rolloutDoc is what the test reads of GET /v1/rollout.
type rolloutDoc struct {
	Halted bool   `json:"halted"`
	Reason string `json:"reason"`
	Rings  []struct {
		Name string `json:"name"`
		Open uint64 `json:"open"`
	} `json:"rings"`
}

// only keeps the fields of rows that want has.
func only(rows []map[string]string, want []map[string]string) []map[string]string {
	if len(want) == 0 {
		return nil
	}
	out := make([]map[string]string, 0, len(rows))
	for _, r := range rows {
		o := map[string]string{}
		for f := range want[0] {
			o[f] = r[f]
		}
		out = append(out, o)
	}
	return out
}

// TestDashboardRollout: an origin with a rollout plan (canary branch-a,
// early branch-b, broad the rest), a tree below it with agents, and a
// second generation published (the canary opens at it). The page's
// compliance tables equal /v1/compliance and its rollout table the rings
// of /v1/rollout; typing a reason and pressing Halt halts the rollout
// (/v1/rollout says halted, with that reason) and the page says why;
// Resume resumes it, and Promote with a ring chosen opens that ring.
func TestDashboardRollout(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	tree, keys, _ := publishedTree(t)
	relayd(t, "keygen", "--role", "rollout", "--out", keys)
	relayd(t, "tuf", "rotate", tree, "--role", "rollout", "--add-key", filepath.Join(keys, "rollout.pub"), "--keys", keys)
	relayd(t, "publish", "--timestamp-only", tree, "--keys", keys)
	root := filepath.Join(tree, "-", "tuf", "2.root.json")
	plan := filepath.Join(t.TempDir(), "rollout.yaml")
	if err := os.WriteFile(plan, []byte(`name: fleet
rings:
  - {name: canary, groups: [branch-a], soak: 1h}
  - {name: early, groups: [branch-b], soak: 1h}
  - {name: broad, groups: ["*"]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	tk := treeKey(t)
	origin, adminURL := startOrigin(t, tree, "--data-dir", t.TempDir(), "--rollout-plan", plan,
		"--rollout-key", filepath.Join(keys, "rollout.key"), "--tree-key-file", tk, "--report-interval", "1s")
	relay := func(node, group, mode, upstream string) *proctest.Proc {
		return start(t, "--mode", mode, "--node", node, "--group", group, "--upstream", upstream, "--root", root,
			"--data-dir", t.TempDir(), "--tree-key-file", tk, "--report-interval", "1s")
	}
	hq := relay("hq-1", "hq", "mirror", origin.URL)
	branches := map[string]*proctest.Proc{
		"branch-a": relay("branch-a-1", "branch-a", "proxy", hq.URL),
		"branch-b": relay("branch-b-1", "branch-b", "proxy", hq.URL),
	}
	for group, b := range branches {
		for i := range 2 {
			startAgent(t, b.URL, root, group, fmt.Sprintf("%s-agent-%d", group, i))
		}
	}
	// Some traffic, for the hit ratio.
	for range 3 {
		for _, b := range branches {
			if _, err := httpGet(b.URL + "/pool/a.deb"); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Generation 2: the canary opens at it, the others stay at 1.
	if err := os.WriteFile(filepath.Join(tree, "pool", "c.deb"), []byte("package 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	relayd(t, "publish", tree, "--keys", keys)
	var ro rolloutDoc
	proctest.Eventually(t, 20*time.Second, "the canary open at generation 2, the others at 1", func() error {
		if err := getJSON(adminURL+"/v1/rollout", "", &ro); err != nil {
			return err
		}
		var opens []string
		for _, r := range ro.Rings {
			opens = append(opens, strconv.FormatUint(r.Open, 10))
		}
		if got := strings.Join(opens, " "); got != "2 1 1" {
			return fmt.Errorf("rings open at %s", got)
		}
		return nil
	})

	run(t, ctx, "open the dashboard", chromedp.Navigate(adminURL+"/ui/"))
	checkCompliance(t, ctx, adminURL, 4, "branch-a", "branch-b")
	rings, err := eval[[]map[string]string](ctx, fmt.Sprintf(rowsJS, "#rollout-rings"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rings {
		got = append(got, r["ring"]+"@"+r["open"])
	}
	if strings.Join(got, " ") != "canary@2 early@1 broad@1" {
		t.Errorf("the page's rollout rings %v, want canary@2 early@1 broad@1 (/v1/rollout)", got)
	}

	const reason = "canary crash: exit 3 on branch-a"
	run(t, ctx, "halt with a reason", chromedp.SendKeys(chromedp.ID("halt-reason"), reason),
		chromedp.Click(chromedp.ID("halt")))
	proctest.Eventually(t, 15*time.Second, "the rollout halted, and the page saying why", func() error {
		if err := getJSON(adminURL+"/v1/rollout", "", &ro); err != nil {
			return err
		}
		if !ro.Halted || ro.Reason != reason {
			return fmt.Errorf("/v1/rollout: halted %v, reason %q", ro.Halted, ro.Reason)
		}
		state, err := text(ctx, "rollout-state")
		if err != nil {
			return err
		}
		if state != "HALTED: "+reason {
			return fmt.Errorf("the page says %q", state)
		}
		return nil
	})
	// The signed gates say so too: what relays and agents follow.
	resp, err := http.Get(origin.URL + "/-/tuf/rollout.json")
	if err != nil {
		t.Fatal(err)
	}
	var signed struct {
		Signed struct {
			Gates struct {
				Halted bool   `json:"halted"`
				Reason string `json:"reason"`
			} `json:"relayd_rollout"`
		} `json:"signed"`
	}
	err = json.NewDecoder(resp.Body).Decode(&signed)
	resp.Body.Close()
	if err != nil || !signed.Signed.Gates.Halted || signed.Signed.Gates.Reason != reason {
		t.Errorf("rollout.json: %+v, %v; want halted with the reason", signed.Signed.Gates, err)
	}
	if f := os.Getenv("RELAYD_UI_SCREENSHOT"); f != "" {
		// Half a minute of agents' traffic first, for the plots.
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end); {
			for _, b := range branches {
				for _, p := range []string{"/pool/a.deb", "/pool/b.deb", "/pool/c.deb"} {
					if _, err := httpGet(b.URL + p); err != nil {
						t.Fatal(err)
					}
				}
			}
			time.Sleep(100 * time.Millisecond) // a steady trickle, not a load test
		}
		screenshot(t, ctx, f)
	}

	// Resume, then Promote with "early" chosen: the ring opens at the
	// newest generation.
	run(t, ctx, "resume", chromedp.Click(chromedp.ID("resume")))
	proctest.Eventually(t, 15*time.Second, "the rollout resumed", func() error {
		if err := getJSON(adminURL+"/v1/rollout", "", &ro); err != nil {
			return err
		}
		if ro.Halted {
			return fmt.Errorf("/v1/rollout still halted (%q)", ro.Reason)
		}
		return nil
	})
	run(t, ctx, "promote early", chromedp.SetValue(chromedp.ID("promote-ring"), "early"),
		chromedp.Click(chromedp.ID("promote")))
	proctest.Eventually(t, 15*time.Second, "ring early open at generation 2, on the page too", func() error {
		if err := getJSON(adminURL+"/v1/rollout", "", &ro); err != nil {
			return err
		}
		if len(ro.Rings) != 3 || ro.Rings[1].Open != 2 || ro.Rings[2].Open != 1 {
			return fmt.Errorf("/v1/rollout rings %+v, want early open at 2, broad at 1", ro.Rings)
		}
		open, err := eval[string](ctx, `document.querySelector('#rollout-rings tr[data-ring="early"] td[data-field="open"]').textContent`)
		if err != nil {
			return err
		}
		if open != "2" {
			return fmt.Errorf("the page shows early open at %q", open)
		}
		return nil
	})
}
