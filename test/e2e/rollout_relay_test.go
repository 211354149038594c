package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relayd/relayd/internal/tuftest"
	"github.com/relayd/relayd/pkg/agent"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/tufrepo"
	"github.com/relayd/relayd/pkg/wire"
)

// rolloutTree is a published tree whose root lists a rollout role, and
// the keys that sign its gates.
type rolloutTree struct {
	tree, keys, root string
	ring             *tufrepo.KeyRing
}

// newRolloutTree writes files into a new tree, makes a key per top-level
// role and a rollout key, creates the repository with a rollout role and
// publishes generation 1.
func newRolloutTree(t testing.TB, files map[string][]byte) *rolloutTree {
	t.Helper()
	rt := &rolloutTree{tree: t.TempDir(), keys: filepath.Join(t.TempDir(), "keys")}
	writeFiles(t, rt.tree, files)
	roles, ring := tuftest.Keys(t, rt.keys)
	tuftest.Rollout(t, rt.keys, roles, ring)
	if res, err := tufrepo.Init(rt.tree, ring, roles, tufrepo.Options{}); err != nil || len(res.Needs) > 0 {
		t.Fatalf("tuf init with a rollout role: %v %+v", err, res)
	}
	rt.ring, rt.root = ring, filepath.Join(rt.tree, "-", "tuf", "1.root.json")
	publish(t, rt.tree, rt.keys)
	return rt
}

// gates signs gates for two rings, canary (branch-a) and broad (every
// other group), open at the generations given, into the tree, and
// returns the file.
func (rt *rolloutTree) gates(t testing.TB, newest, canary, broad uint64) []byte {
	t.Helper()
	pin := func(g uint64) wire.Pin {
		p, err := tufrepo.PinOf(rt.tree, int64(g))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	g := wire.Gates{Plan: "e2e", Newest: pin(newest), Rings: []wire.Ring{
		{Name: "canary", Groups: []string{"branch-a"}, Open: pin(canary)},
		{Name: "broad", Groups: []string{"*"}, Open: pin(broad)},
	}}
	raw, err := tufrepo.SignGates(rt.tree, rt.ring, g, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// waitGates waits until the relay serves exactly want at
// /-/tuf/rollout.json, asking it to poll its parents (POST /v1/sync) while
// it does not.
func waitGates(t testing.TB, r *treeRelay, want []byte) {
	t.Helper()
	c := newClient()
	eventually(t, 60*time.Second, r.node+" to serve the signed gates", func() error {
		resp, err := tryGet(c, http.MethodGet, r.URL+wire.TUFPath(wire.GatesName))
		if err != nil {
			return err
		}
		if resp.status == http.StatusOK && bytes.Equal(resp.body, want) {
			if cc := resp.header.Get("Cache-Control"); cc != "no-cache" {
				return stopErr{Err: fmt.Errorf("rollout.json: Cache-Control %q, want no-cache", cc)}
			}
			return nil
		}
		if sr, err := newClient().Post(r.admin+"/v1/sync", "application/json", nil); err == nil {
			sr.Body.Close()
		}
		return fmt.Errorf("rollout.json: status %d, %d bytes (want %d)", resp.status, len(resp.body), len(want))
	})
}

// cachedDigests is what a relay's store holds under each path
// (GET /v1/cache).
func cachedDigests(t testing.TB, admin string) map[string]string {
	t.Helper()
	var l struct {
		Objects []struct {
			Path   string `json:"path"`
			Digest string `json:"digest"`
		} `json:"objects"`
	}
	r := get(t, newClient(), http.MethodGet, admin+"/v1/cache?limit=1000")
	if err := json.Unmarshal(r.body, &l); err != nil {
		t.Fatalf("GET /v1/cache: %v in %s", err, truncate(r.body))
	}
	out := map[string]string{}
	for _, o := range l.Objects {
		out[o.Path] = strings.TrimPrefix(o.Digest, "sha256:")
	}
	return out
}

// wantFiles checks that dir holds exactly the bytes of files.
func wantFiles(t testing.TB, dir string, files map[string][]byte, what string) {
	t.Helper()
	for p, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %s: %d bytes, err %v; want the %d bytes of its generation", what, p, len(got), err, len(want))
		}
	}
}

// TestRolloutPrepositionThenRelease: origin → hq (mirror) → two verifying
// proxy branches, branch-a in ring canary and branch-b in ring broad, an
// agent with --group in each. After a publish with gates opening only the
// canary, the canary agent installs generation 2 while the broad agent
// keeps generation 1 (installed objects unchanged), although both branch
// relays already hold every object of generation 2 (pre-positioned).
// Gates opening the broad ring move its agent to generation 2 with no
// object byte from the origin. A relay serving forged or replayed gates
// cannot move the broad agent.
func TestRolloutPrepositionThenRelease(t *testing.T) {
	t.Parallel()
	gen1 := map[string][]byte{
		"security/kb-1.patch":          makeData(1501, 20<<10),
		"security/kb-2.patch":          makeData(1502, 30<<10),
		"software/win-x64/agent.msi":   makeData(1503, 200<<10),
		"software/win-x64/tools/t.zip": makeData(1504, 60<<10),
	}
	rt := newRolloutTree(t, gen1)
	g1 := rt.gates(t, 1, 1, 1)
	tk := treeKeygen(t)
	origin := startRelayd(t, "--mode", "origin", "--root", rt.tree, "--node", "origin", "--tree-key-file", tk)
	hq := startTreeRelay(t, "hq-1", "hq", "mirror", "", "--upstream", origin.URL, "--root", rt.root, "--tree-key-file", tk)
	brA := startTreeRelay(t, "br-a-1", "branch-a", "proxy", "", "--upstream", hq.URL, "--root", rt.root, "--tree-key-file", tk)
	brB := startTreeRelay(t, "br-b-1", "branch-b", "proxy", "", "--upstream", hq.URL, "--root", rt.root, "--tree-key-file", tk)
	ts1 := readFile(t, timestampFile(rt.tree))
	for _, r := range []*treeRelay{hq, brA, brB} {
		waitCatalog(t, r.proc, ts1, 60*time.Second)
		waitGates(t, r, g1)
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	agentA := libAgent(t, rt.root, []string{brA.URL}, dirA, nil, func(c *agent.Config) { c.Group = "branch-a" })
	agentB := libAgent(t, rt.root, []string{brB.URL}, dirB, nil, func(c *agent.Config) { c.Group = "branch-b" })
	ctx := context.Background()
	for _, a := range []*agent.Agent{agentA, agentB} {
		if res, err := a.Sync(ctx); err != nil || res.Generation != 1 || res.Ring == "" {
			t.Fatalf("first sync: %+v, %v; want generation 1 in a ring", res, err)
		}
	}

	// Generation 2 changes two objects; the gates open only the canary.
	gen2 := map[string][]byte{}
	for p, b := range gen1 {
		gen2[p] = b
	}
	gen2["security/kb-2.patch"] = makeData(1512, 31<<10)
	gen2["software/win-x64/agent.msi"] = makeData(1513, 210<<10)
	writeFiles(t, rt.tree, gen2)
	publish(t, rt.tree, rt.keys)
	g2 := rt.gates(t, 2, 2, 1)
	ts2 := readFile(t, timestampFile(rt.tree))
	for _, r := range []*treeRelay{hq, brA, brB} {
		waitCatalog(t, r.proc, ts2, 60*time.Second)
		waitGates(t, r, g2)
	}
	// Both branches pre-position generation 2: every object their agents
	// hold, in its new version, is on their disk before any gate opens.
	for _, r := range []*treeRelay{brA, brB} {
		eventually(t, 60*time.Second, r.node+" to hold every object of generation 2", func() error {
			held := cachedDigests(t, r.admin)
			for p, b := range gen2 {
				if held[p] != sha(b) {
					return fmt.Errorf("%s: holds %.12s, want %.12s", p, held[p], sha(b))
				}
			}
			return nil
		})
	}
	// Each version is served by its consistent name at every level while
	// a ring is open at it: the older one by the branch and the mirror
	// (which keeps it), the newest by the origin too (its file hashes to
	// it), not the older one there (its file changed).
	c := newClient()
	for _, p := range []string{"security/kb-2.patch", "software/win-x64/agent.msi"} {
		dir, base := filepath.Split(p)
		v1, v2 := dir+sha(gen1[p])+"."+base, dir+sha(gen2[p])+"."+base
		for _, r := range []*proc{brB.proc, hq.proc} {
			wantObject(t, get(t, c, http.MethodGet, r.URL+"/"+v1), gen1[p], r.Name+" "+v1)
			wantObject(t, get(t, c, http.MethodGet, r.URL+"/"+v2), gen2[p], r.Name+" "+v2)
		}
		wantObject(t, get(t, c, http.MethodGet, origin.URL+"/"+v2), gen2[p], "origin "+v2)
		wantStatus(t, get(t, c, http.MethodGet, origin.URL+"/"+v1), http.StatusNotFound, "origin "+v1+" (replaced)")
	}
	if res, err := agentA.Sync(ctx); err != nil || res.Generation != 2 || res.Ring != "canary" {
		t.Fatalf("canary sync: %+v, %v; want generation 2 in ring canary", res, err)
	}
	wantFiles(t, dirA, gen2, "canary agent")
	res, err := agentB.Sync(ctx)
	if err != nil || res.Generation != 1 || res.Ring != "broad" || res.Held != 2 {
		t.Fatalf("broad sync: %+v, %v; want generation 1 kept, 2 held back, in ring broad", res, err)
	}
	wantFiles(t, dirB, gen1, "broad agent while its gate is closed")

	// A branch started after generation 2 (its relay never saw 1 live)
	// learns generation 1 from the gates' pin, and its broad agent installs
	// generation 1 through it, by consistent names, from hq.
	brC := startTreeRelay(t, "br-c-1", "branch-c", "proxy", "", "--upstream", hq.URL, "--root", rt.root, "--tree-key-file", tk)
	waitCatalog(t, brC.proc, ts2, 60*time.Second)
	waitGates(t, brC, g2)
	dirC := t.TempDir()
	agentC := libAgent(t, rt.root, []string{brC.URL}, dirC, nil, func(c *agent.Config) { c.Group = "branch-c" })
	eventually(t, 30*time.Second, "a broad agent behind a branch started after generation 2 to install generation 1", func() error {
		if res, err := agentC.Sync(ctx); err != nil || res.Generation != 1 || res.Held != 2 {
			return fmt.Errorf("%+v, %v", res, err)
		}
		return nil
	})
	wantFiles(t, dirC, gen1, "a broad agent behind a branch started after generation 2")

	// A relay that serves forged gates (generation 2 opened for every
	// ring, the signatures of the real ones) or replayed ones (the
	// generation 1 gates, validly signed) cannot move the broad agent: a
	// fresh agent behind it installs nothing, the broad agent keeps what
	// it has.
	forged := forge(t, g2, func(g map[string]any) {
		for _, r := range g["rings"].([]any) {
			r.(map[string]any)["open"] = g["newest"]
		}
	})
	for name, bad := range map[string][]byte{"forged": forged, "replayed": g1} {
		// It serves the bad gates, and lists itself alone as its group.
		evil := startHostile(t, brB.URL, func(r *http.Request) bool { return r.URL.Path == wire.TUFPath(wire.GatesName) },
			func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(bad) })
		evil.lone.Store(true)
		freshDir := t.TempDir()
		fresh := libAgent(t, rt.root, []string{evil.URL}, freshDir, nil, func(c *agent.Config) { c.Group = "branch-b" })
		switch res, err := fresh.Sync(ctx); {
		case err != nil && !errors.Is(err, agent.ErrNoGates):
			t.Errorf("a fresh broad agent behind a relay serving %s gates: %v, want ErrNoGates or generation 1", name, err)
		case err == nil && res.Generation != 1:
			t.Errorf("a fresh broad agent behind a relay serving %s gates installed generation %d, want 1", name, res.Generation)
		case err == nil:
			wantFiles(t, freshDir, gen1, "a fresh broad agent behind a relay serving "+name+" gates")
		}
		held := libAgent(t, rt.root, []string{evil.URL}, dirB, nil, func(c *agent.Config) { c.Group = "branch-b" })
		if res, err := held.Sync(ctx); err != nil || res.Generation != 1 {
			t.Errorf("broad agent behind a relay serving %s gates: %+v, %v; want generation 1 kept", name, res, err)
		}
		wantFiles(t, dirB, gen1, "broad agent behind a relay serving "+name+" gates")
		if evil.hits.Load() == 0 {
			t.Errorf("the relay serving %s gates was never asked for them", name)
		}
	}

	// A watching broad agent stays at generation 1 until its gate opens,
	// then syncs on the gates event alone.
	dirW := t.TempDir()
	watcher := libAgent(t, rt.root, []string{brB.URL}, dirW, nil, func(c *agent.Config) { c.Group, c.SyncJitter = "branch-b", 0 })
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan agent.Result, 16)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		_ = watcher.Watch(wctx, func(res agent.Result, err error) {
			if err == nil {
				watched <- res
			}
		})
	}()
	defer func() { stopWatch(); <-watchDone }()
	select {
	case res := <-watched:
		if res.Generation != 1 || res.Held != 2 {
			t.Fatalf("the watching broad agent's first sync: %+v, want generation 1, 2 held back", res)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the watching broad agent did not sync")
	}

	// The broad ring opens: its agent updates from its branch relay, and
	// the origin sends no object for it.
	originObjects, hqObjects := objectGets(origin.Log()), objectGets(hq.Log())
	g3 := rt.gates(t, 2, 2, 2)
	for _, r := range []*treeRelay{hq, brB} {
		waitGates(t, r, g3)
	}
	if res, err := agentB.Sync(ctx); err != nil || res.Generation != 2 || res.Held != 0 {
		t.Fatalf("broad sync after its gate opened: %+v, %v; want generation 2", res, err)
	}
	wantFiles(t, dirB, gen2, "broad agent after its gate opened")
	eventually(t, 30*time.Second, "the watching broad agent to sync generation 2 on the gates event", func() error {
		select {
		case res := <-watched:
			if res.Generation == 2 {
				return nil
			}
			return fmt.Errorf("synced %+v", res)
		default:
			return errors.New("no sync yet")
		}
	})
	wantFiles(t, dirW, gen2, "the watching broad agent after its gate opened")
	if d := diffCounts(originObjects, objectGets(origin.Log())); len(d) != 0 {
		t.Errorf("after the broad gate opened the origin served objects %v, want none", d)
	}
	if d := diffCounts(hqObjects, objectGets(hq.Log())); len(d) != 0 {
		t.Errorf("after the broad gate opened the branch fetched objects %v from hq, want none (pre-positioned)", d)
	}
}

// TestRolloutRelayRefusesBadGates: a relay whose parent serves forged,
// replayed or expired gates refuses them (counted by reason, said once
// each in its log) and keeps serving the gates it holds; a plain proxy
// passes the file through, never from its cache.
func TestRolloutRelayRefusesBadGates(t *testing.T) {
	t.Parallel()
	files := map[string][]byte{"security/kb-1.patch": makeData(1601, 10<<10)}
	rt := newRolloutTree(t, files)
	g1 := rt.gates(t, 1, 1, 1)
	g2 := rt.gates(t, 1, 1, 1)
	expired, err := tufrepo.SignGates(rt.tree, rt.ring, wire.Gates{Plan: "e2e", Newest: mustPin(t, rt.tree, 1),
		Rings: []wire.Ring{{Name: "broad", Groups: []string{"*"}, Open: mustPin(t, rt.tree, 1)}}}, time.Hour, time.Now().Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	origin := startRelayd(t, "--mode", "origin", "--root", rt.tree, "--node", "origin")
	var serve atomic.Pointer[[]byte]
	serve.Store(&g2)
	parent := startHostile(t, origin.URL, func(r *http.Request) bool { return r.URL.Path == wire.TUFPath(wire.GatesName) },
		func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(*serve.Load()) })
	parent.lone.Store(true)
	relay := startTreeRelay(t, "br-1", "branch", "proxy", "", "--upstream", parent.URL, "--root", rt.root)
	plain := startTreeRelay(t, "plain-1", "plain", "proxy", "", "--upstream", parent.URL)
	waitCatalog(t, relay.proc, readFile(t, timestampFile(rt.tree)), 60*time.Second)
	waitGates(t, relay, g2)
	c := newClient()
	forged := forge(t, g2, func(g map[string]any) { g["halted"], g["reason"] = true, "forged" })
	for name, bad := range map[string][]byte{"forged": forged, "replayed": g1, "expired": expired} {
		serve.Store(&bad)
		eventually(t, 30*time.Second, "br-1 to refuse the "+name+" gates", func() error {
			syncNow(t, strings.TrimPrefix(relay.admin, "http://"))
			body := get(t, c, http.MethodGet, relay.admin+"/metrics").body
			if v, _ := metric(body, `relayd_rollout_gates_refused_total{reason="`+name+`"}`); v < 1 {
				return fmt.Errorf("relayd_rollout_gates_refused_total{reason=%q} = %v", name, v)
			}
			return nil
		})
		wantBody(t, get(t, c, http.MethodGet, relay.URL+wire.TUFPath(wire.GatesName)), g2, "br-1's gates after "+name+" ones")
		// The plain proxy passes each file on as it is, never cached.
		wantBody(t, get(t, c, http.MethodGet, plain.URL+wire.TUFPath(wire.GatesName)), bad, "the plain proxy's rollout.json")
	}
	// An agent holding those gates asks with their digest: 304, no body.
	if r := get(t, c, http.MethodGet, relay.URL+wire.TUFPath(wire.GatesName), "If-None-Match", digest.FromBytes(g2).ETag()); r.status != http.StatusNotModified || len(r.body) != 0 {
		t.Fatalf("rollout.json with the held gates' ETag: status %d, %d bytes; want 304", r.status, len(r.body))
	}
	// The relay's /v1/rollout shows the gates it holds, read-only.
	var st struct {
		ReadOnly bool `json:"read_only"`
		Signed   struct {
			Version int64 `json:"version"`
		} `json:"signed"`
		Gates *wire.Gates `json:"gates"`
	}
	if r := get(t, c, http.MethodGet, relay.admin+"/v1/rollout"); json.Unmarshal(r.body, &st) != nil || !st.ReadOnly || st.Signed.Version != 2 || st.Gates == nil {
		t.Errorf("br-1 /v1/rollout: %s, want its held gates (version 2), read-only", truncate(r.body))
	}
	if n := strings.Count(relay.Log(), "rollout gates from the parents refused"); n != 3 {
		t.Errorf("br-1 said %d refusals in its log, want one per distinct file (3)", n)
	}
}

// forge rewrites the gates of a gates file with change, keeping the
// signatures of the original.
func forge(t testing.TB, raw []byte, change func(g map[string]any)) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	change(doc["signed"].(map[string]any)[wire.GatesField].(map[string]any))
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(b, raw) {
		t.Fatal("forge changed nothing")
	}
	return b
}

func mustPin(t testing.TB, tree string, gen int64) wire.Pin {
	t.Helper()
	p, err := tufrepo.PinOf(tree, gen)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
