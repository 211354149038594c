// The origin's staged rollout, end to end in one process: a real origin
// with a plan and the rollout key signs gates a TUF client verifies, and
// the admin API moves them.
package node_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/internal/testlog"
	"github.com/relayd/relayd/internal/tuftest"
	"github.com/relayd/relayd/pkg/admin"
	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/node"
	"github.com/relayd/relayd/pkg/tufclient"
	"github.com/relayd/relayd/pkg/tufrepo"
	"github.com/relayd/relayd/pkg/wire"
)

const testRolloutPlan = `name: fleet
rings:
  - {name: canary, groups: ["branch-a"], soak: 1h}
  - {name: early,  groups: ["branch-b"], soak: 1h}
  - {name: broad,  groups: ["*"]}
gate: {min_agents: 1, success: 0.95, max_failures: 0.02}
`

// rolloutTree is a published tree (generation 1) whose root lists a
// rollout role, its keys and a plan file.
type rolloutTree struct {
	tree, keys, plan string
	ring             *tufrepo.KeyRing
	root             []byte
}

func newRolloutTree(t *testing.T) *rolloutTree {
	t.Helper()
	dir := t.TempDir()
	rt := &rolloutTree{tree: filepath.Join(dir, "tree"), keys: filepath.Join(dir, "keys"), plan: filepath.Join(dir, "plan.yaml")}
	roles, _ := tuftest.Keys(t, rt.keys)
	var err error
	if rt.ring, err = tufrepo.LoadKeyRing(nil, []string{rt.keys}); err != nil {
		t.Fatal(err)
	}
	tuftest.Rollout(t, rt.keys, roles, rt.ring)
	if _, err := tufrepo.Init(rt.tree, rt.ring, roles, tufrepo.Options{Workers: 1}); err != nil {
		t.Fatal(err)
	}
	rt.publish(t, "security/a.patch", "generation one")
	if rt.root, err = os.ReadFile(filepath.Join(rt.tree, "-", "tuf", "1.root.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rt.plan, []byte(testRolloutPlan), 0o600); err != nil {
		t.Fatal(err)
	}
	return rt
}

// publish writes a file into the tree and publishes the next generation.
func (rt *rolloutTree) publish(t *testing.T, name, body string) {
	t.Helper()
	p := filepath.Join(rt.tree, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := tufrepo.Publish(context.Background(), rt.tree, rt.ring, tufrepo.Options{Workers: 1}); err != nil {
		t.Fatal(err)
	}
}

// startRolloutOrigin runs an origin with the plan on dataDir.
func startRolloutOrigin(t *testing.T, rt *rolloutTree, dataDir string, lw *testlog.Writer) (*node.Node, func()) {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.Node, cfg.Group, cfg.Mode, cfg.Root = "origin", "origin", node.ModeOrigin, rt.tree
	cfg.DataDir, cfg.Listen, cfg.Admin, cfg.Gossip = dataDir, "127.0.0.1:0", "127.0.0.1:0", ""
	cfg.RolloutPlan, cfg.RolloutKeyFile = rt.plan, filepath.Join(rt.keys, wire.RolloutRole+".key")
	cfg.DrainTimeout = time.Second
	n, err := node.New(cfg, zerolog.New(lw), clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("origin Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return n, stop
}

// verifiedGates fetches rollout.json from the origin and verifies it.
func verifiedGates(c *tufclient.Client, base string) (*wire.Gates, error) {
	resp, err := http.Get(base + wire.TUFPath(wire.GatesName))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, wire.MaxGatesSize+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
		return nil, fmt.Errorf("Cache-Control %q, want no-cache", cc)
	}
	g, _, err := c.VerifyGates(raw)
	return g, err
}

func opensOf(g *wire.Gates) string {
	var s []string
	for _, r := range g.Rings {
		s = append(s, fmt.Sprint(r.Open.Version))
	}
	return strings.Join(s, " ")
}

// waitGates waits until the verified gates have the rings open at want.
func waitGates(t *testing.T, c *tufclient.Client, base, want string, halted bool) *wire.Gates {
	t.Helper()
	var g *wire.Gates
	waitFor(t, 10*time.Second, "gates "+want, func() error {
		var err error
		if g, err = verifiedGates(c, base); err != nil {
			return err
		}
		if got := opensOf(g); got != want || g.Halted != halted {
			return fmt.Errorf("rings open at %s, halted %v", got, g.Halted)
		}
		return nil
	})
	return g
}

func TestOriginRollout(t *testing.T) {
	t.Parallel()
	lw := testlog.New(t)
	rt := newRolloutTree(t)
	data := t.TempDir()
	n, stop := startRolloutOrigin(t, rt, data, lw)
	base := "http://" + n.ContentAddr()
	tc, err := tufclient.New(rt.root, tufclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The tree was published before the plan: every ring adopts it.
	waitGates(t, tc, base, "1 1 1", false)

	// A new generation opens ring 0 at once, announced on /-/events.
	events := watchEvents(t, base)
	rt.publish(t, "security/b.patch", "generation two")
	g := waitGates(t, tc, base, "2 1 1", false)
	if g.Plan != "fleet" || g.Newest.Version != 2 || g.Rings[0].Groups[0] != "branch-a" || g.Rings[0].Since.IsZero() {
		t.Fatalf("gates %+v", g)
	}
	if pin, err := tufrepo.PinOf(rt.tree, 2); err != nil || g.Rings[0].Open != pin {
		t.Fatalf("ring 0 open at %+v, want the pin of generation 2 %+v (%v)", g.Rings[0].Open, pin, err)
	}
	waitEvent(t, events, wire.KindGates)

	// By hand: promote, halt, refused promotes, resume.
	ac := admin.NewClient(n.AdminAddr(), "", nil)
	ctx := context.Background()
	st, err := ac.Promote(ctx, "")
	if err != nil || opensOf(st.Gates) != "2 2 1" || st.Signed.Version == 0 {
		t.Fatalf("promote: %+v %v", st, err)
	}
	waitGates(t, tc, base, "2 2 1", false)
	if st, err = ac.Halt(ctx, "bad driver on branch-b"); err != nil || !st.Halted || st.Reason != "bad driver on branch-b" {
		t.Fatalf("halt: %+v %v", st, err)
	}
	if g := waitGates(t, tc, base, "2 2 1", true); g.Reason != "bad driver on branch-b" {
		t.Fatalf("signed reason %q", g.Reason)
	}
	wantAPIError(t, "promote while halted", func() error { _, err := ac.Promote(ctx, "broad"); return err }, http.StatusConflict, "halted")
	if _, err := ac.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	wantAPIError(t, "unknown ring", func() error { _, err := ac.Promote(ctx, "nope"); return err }, http.StatusNotFound, "unknown_ring")
	if _, err := ac.Promote(ctx, "broad"); err != nil {
		t.Fatal(err)
	}
	waitGates(t, tc, base, "2 2 2", false)
	st, err = ac.Rollout(ctx)
	if err != nil || st.ReadOnly || len(st.Rings) != 3 || st.Rings[2].Open != 2 || st.Rings[0].Soak != "1h0m0s" {
		t.Fatalf("status: %+v %v", st, err)
	}
	metrics := scrape(t, n.AdminAddr())
	for _, want := range []string{`relayd_rollout_ring_generation{ring="broad"} 2`, "relayd_rollout_halted 0",
		`relayd_rollout_decisions_total{decision="promote"} 2`, `relayd_rollout_decisions_total{decision="manual_halt"} 1`,
		`relayd_rollout_decisions_total{decision="adopt"} 1`} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}

	// A restart neither reopens nor forgets: nothing is adopted again.
	stop()
	n, _ = startRolloutOrigin(t, rt, data, lw)
	base = "http://" + n.ContentAddr()
	waitGates(t, tc, base, "2 2 2", false)
	if m := scrape(t, n.AdminAddr()); !strings.Contains(m, `relayd_rollout_decisions_total{decision="adopt"} 0`+"\n") {
		t.Errorf("restart adopted the tree's generation again (the state was forgotten)")
	}
}

func wantAPIError(t *testing.T, what string, f func() error, status int, code string) {
	t.Helper()
	var api *admin.APIError
	if err := f(); !errors.As(err, &api) || api.Status != status || api.Code != code {
		t.Fatalf("%s: %v, want %d %s", what, err, status, code)
	}
}

func scrape(t *testing.T, adminAddr string) string {
	t.Helper()
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// watchEvents opens /-/events as an agent and returns its lines.
func watchEvents(t *testing.T, base string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+wire.EventsPath, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	return lines
}

// waitEvent waits for an event of kind on lines.
func waitEvent(t *testing.T, lines <-chan string, kind string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("event stream ended before a %q event", kind)
			}
			if l == "event: "+kind {
				return
			}
		case <-timeout:
			t.Fatalf("no %q event in 10 s", kind)
		}
	}
}

// TestOriginRolloutWithoutRole: a plan on a tree whose root lists no
// rollout role signs nothing, and the status says why.
func TestOriginRolloutWithoutRole(t *testing.T) {
	t.Parallel()
	lw := testlog.New(t)
	rt := newRolloutTree(t)
	// A second tree with the plain roles, and the rollout key of the first.
	plain := &rolloutTree{tree: filepath.Join(t.TempDir(), "tree"), keys: filepath.Join(t.TempDir(), "keys"), plan: rt.plan}
	roles, ring := tuftest.Keys(t, plain.keys)
	plain.ring = ring
	if _, err := tufrepo.Init(plain.tree, ring, roles, tufrepo.Options{Workers: 1}); err != nil {
		t.Fatal(err)
	}
	plain.publish(t, "a.txt", "one")
	if err := os.Rename(filepath.Join(rt.keys, wire.RolloutRole+".key"), filepath.Join(plain.keys, wire.RolloutRole+".key")); err != nil {
		t.Fatal(err)
	}
	n, _ := startRolloutOrigin(t, plain, t.TempDir(), lw)
	ac := admin.NewClient(n.AdminAddr(), "", nil)
	waitFor(t, 10*time.Second, "the problem in the status", func() error {
		st, err := ac.Rollout(context.Background())
		if err == nil && !strings.Contains(st.Problem, "no rollout role") {
			err = fmt.Errorf("problem %q", st.Problem)
		}
		return err
	})
	resp, err := http.Get("http://" + n.ContentAddr() + wire.TUFPath(wire.GatesName))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("rollout.json: %d, want 404", resp.StatusCode)
	}
}
