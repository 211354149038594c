package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestTreeShowsAKilledRelayStaleThenGone: `relayd tree` at a parent shows
// a child whose reports stopped (kill -9) as stale after two report
// intervals of the viewer and gone after three, still listed, while its live sibling
// stays ok. At 8d8f9f8 it showed ok until the report expired, then
// dropped the relay without a word.
func TestTreeShowsAKilledRelayStaleThenGone(t *testing.T) {
	t.Parallel()
	tree := t.TempDir()
	writeFiles(t, tree, map[string][]byte{"pool/a.deb": makeData(41, 1000)})
	tk := treeKeygen(t)
	origin := startRelayd(t, "--mode", "origin", "--root", tree, "--node", "origin", "--admin", "127.0.0.1:0",
		"--tree-key-file", tk, "--report-interval", "3s")
	admin := "http://" + origin.WaitLogAddr(t, "admin listening")
	// The viewer's interval sets the thresholds (stale after 6 s, gone
	// after 9 s): a stale window of 3 s that polling cannot miss on a
	// loaded machine, while the children report every second.
	child := func(node string) *proc {
		return startRelayd(t, "--mode", "proxy", "--node", node, "--group", "branch", "--upstream", origin.URL,
			"--data-dir", t.TempDir(), "--tree-key-file", tk, "--report-interval", "1s")
	}
	child("b-1")
	victim := child("b-2")
	health := func() (map[string]string, string, error) {
		out, stderr, err := runRelayd(t, 10*time.Second, "tree", "--admin", admin)
		if err != nil {
			return nil, out, fmt.Errorf("relayd tree: %v: %s", err, stderr)
		}
		h := map[string]string{}
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) >= 5 && strings.HasPrefix(f[0], "b-") {
				h[f[0]] = f[4]
			}
		}
		return h, out, nil
	}
	want := func(what string, timeout time.Duration, b1, b2 string) {
		t.Helper()
		eventually(t, timeout, what, func() error {
			h, out, err := health()
			if err != nil {
				return err
			}
			if h["b-1"] != b1 || h["b-2"] != b2 {
				return fmt.Errorf("health b-1 %q, b-2 %q; want %q and %q:\n%s", h["b-1"], h["b-2"], b1, b2, out)
			}
			return nil
		})
	}
	want("both children ok in the origin's tree", 30*time.Second, "ok", "ok")
	victim.Kill(t)
	want("the killed child stale", 20*time.Second, "ok", "stale")
	want("the killed child gone, still listed", 20*time.Second, "ok", "gone")
}
