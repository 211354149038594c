// The origin's automatic gates on an injected clock: outcome reports the
// origin receives (POST /-/report, signed with the tree key) open the next
// ring after the soak and halt the rollout on failures; the gates are
// re-signed at half their lifetime.
package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/internal/testlog"
	"github.com/relayd/relayd/pkg/admin"
	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/node"
	"github.com/relayd/relayd/pkg/treeauth"
	"github.com/relayd/relayd/pkg/tufclient"
	"github.com/relayd/relayd/pkg/wire"
)

func TestOriginRolloutGates(t *testing.T) {
	t.Parallel()
	lw := testlog.New(t)
	rt := newRolloutTree(t)
	plan := strings.Replace(testRolloutPlan, "soak: 1h}", "soak: 30m}", 1) // canary: 30 minutes
	if err := os.WriteFile(rt.plan, []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}
	keyFile, err := treeauth.GenerateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	treeKey, err := treeauth.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	cfg := node.DefaultConfig()
	cfg.Node, cfg.Group, cfg.Mode, cfg.Root = "origin", "origin", node.ModeOrigin, rt.tree
	cfg.DataDir, cfg.Listen, cfg.Admin, cfg.Gossip = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", ""
	cfg.RolloutPlan, cfg.RolloutKeyFile = rt.plan, filepath.Join(rt.keys, wire.RolloutRole+".key")
	cfg.RolloutExpiry, cfg.TreeKeyFile, cfg.DrainTimeout = 4*time.Hour, keyFile, time.Second
	cfg.ReportInterval = 4 * time.Hour // the reports outlive the clock's jumps
	n, err := node.New(cfg, zerolog.New(lw), clk)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	base := "http://" + n.ContentAddr()
	tc, err := tufclient.New(rt.root, tufclient.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	// tick moves the clock; the origin's rollout loop runs on it.
	tick := func(d time.Duration) { clk.Advance(d) }
	waitGates(t, tc, base, "1 1 1", false)

	rt.publish(t, "security/b.patch", "generation two")
	waitTicking(t, tc, base, tick, "2 1 1")

	// branch-a (the canary) reports: both its agents installed 2.
	report := func(group string, gen wire.GenOutcome, agents int) {
		t.Helper()
		r := wire.Report{Group: group, Node: group + "-1", Mode: "proxy", Generation: 2, Ready: true, Sent: clk.Now(),
			Outcomes: &wire.Outcomes{Agents: agents, Generations: []wire.GenOutcome{gen}, Oldest: clk.Now()}}
		body, _ := json.Marshal(r)
		req, _ := http.NewRequest(http.MethodPost, base+wire.ReportPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		(&treeauth.Signer{Key: treeKey, Group: group, Node: group + "-1", Clock: clk}).Sign(req, wire.ReportPath, body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("report of %s: status %d", group, resp.StatusCode)
		}
	}
	report("branch-a", wire.GenOutcome{Generation: 2, Installed: 2}, 2)
	st := waitRollout(t, n, tick, "the canary's gate met", func(st rolloutDoc) bool { return st.Rings[0].Met })
	if st.Rings[0].Counts.Reporting != 2 || st.Rings[0].Counts.Installed != 2 {
		t.Fatalf("canary counts %+v", st.Rings[0].Counts)
	}
	// Not before the soak: 29 minutes on, ring 1 is still shut.
	tick(29 * time.Minute)
	tick(time.Second)
	if g, err := verifiedGates(tc, base); err != nil || opensOf(g) != "2 1 1" {
		t.Fatalf("before the soak: %v %v", opensOf(g), err)
	}
	report("branch-a", wire.GenOutcome{Generation: 2, Installed: 2}, 2)
	tick(time.Minute)
	waitTicking(t, tc, base, tick, "2 2 1") // ring 1 opens after the soak

	// branch-b (ring 1) fails: the rollout halts, and says why.
	report("branch-b", wire.GenOutcome{Generation: 2, Installed: 9, Failed: 1, Reasons: []wire.Reason{{Reason: "exit 3: no disk", Count: 1}}}, 10)
	var g *wire.Gates
	waitFor(t, 10*time.Second, "halted", func() error {
		tick(time.Second)
		var err error
		if g, err = verifiedGates(tc, base); err == nil && !g.Halted {
			err = fmt.Errorf("not halted: %s", opensOf(g))
		}
		return err
	})
	if !strings.Contains(g.Reason, `ring "early"`) || !strings.Contains(g.Reason, "1 of 10") || !strings.Contains(g.Reason, "exit 3: no disk") {
		t.Fatalf("halt reason %q", g.Reason)
	}
	// Re-signed at half the lifetime (2 h), unchanged otherwise.
	_, before, _ := tc.Gates()
	tick(2*time.Hour + time.Second)
	waitFor(t, 10*time.Second, "gates re-signed", func() error {
		tick(time.Second)
		g, info, err := verifiedInfo(tc, base)
		if err == nil && (info.Version <= before.Version || !g.Halted || opensOf(g) != "2 2 1") {
			err = fmt.Errorf("version %d (was %d), halted %v, open %s", info.Version, before.Version, g.Halted, opensOf(g))
		}
		return err
	})
}

// waitTicking ticks the clock until the verified gates have the rings
// open at want.
func waitTicking(t *testing.T, tc *tufclient.Client, base string, tick func(time.Duration), want string) {
	t.Helper()
	waitFor(t, 10*time.Second, "rings open at "+want, func() error {
		tick(time.Second)
		g, err := verifiedGates(tc, base)
		if err == nil && opensOf(g) != want {
			err = fmt.Errorf("rings open at %s", opensOf(g))
		}
		return err
	})
}

// rolloutDoc is the origin's /v1/rollout.
type rolloutDoc = admin.RolloutStatus

// waitRollout ticks the clock until the origin's rollout status satisfies ok.
func waitRollout(t *testing.T, n *node.Node, tick func(time.Duration), what string, ok func(rolloutDoc) bool) rolloutDoc {
	t.Helper()
	var st rolloutDoc
	waitFor(t, 10*time.Second, what, func() error {
		tick(time.Second)
		var err error
		if st, err = admin.NewClient(n.AdminAddr(), "", nil).Rollout(context.Background()); err != nil {
			return err
		}
		if !ok(st) {
			return fmt.Errorf("status %+v", st.Rings)
		}
		return nil
	})
	return st
}

// verifiedInfo is verifiedGates with the signed file's version.
func verifiedInfo(c *tufclient.Client, base string) (*wire.Gates, tufclient.GatesInfo, error) {
	if _, err := verifiedGates(c, base); err != nil {
		return nil, tufclient.GatesInfo{}, err
	}
	g, info, _ := c.Gates()
	return g, info, nil
}
