// The agent side end to end: pkg/agent and `relayd fetch|agent|loadgen`
// against real relayd processes on 127.0.0.1, with relays killed, relays
// that tamper, and hostile relays written here.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/agent"
	"github.com/relayd/relayd/pkg/wire"
)

// noPartial checks dir holds no temporary download files.
func noPartial(t testing.TB, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".relayd-part-") {
			t.Errorf("partial download left behind: %s", p)
		}
		return nil
	})
}

func TestAgentResumesOnAnotherRelayWhenOneIsKilled(t *testing.T) {
	t.Parallel()
	big := makeData(601, 24<<20)
	tree, _, root := publishedTree(t, map[string][]byte{"software/linux-amd64/2.0/agent.tgz": big, "security/kb-1.patch": makeData(602, 900)})
	origin := startRelayd(t, "--mode", "origin", "--root", tree)
	relays := map[string]*proc{}
	var urls []string
	for range 2 {
		// With the root, a relay knows each object's digest before it has
		// the bytes: a resume's If-Range matches even on a miss.
		r := startRelayd(t, "--mode", "proxy", "--upstream", origin.URL, "--data-dir", t.TempDir(), "--cache-max", "1GiB", "--root", root)
		relays[r.Addr] = r
		urls = append(urls, r.URL)
	}
	tr := newWatchTransport()
	tr.holdPath, tr.holdAfter = "/software/linux-amd64/2.0/agent.tgz", 1<<20
	out := t.TempDir()
	a := libAgent(t, root, urls, out, tr, func(c *agent.Config) { c.StallTimeout = 30 * time.Second })
	done := make(chan error, 1)
	go func() {
		_, err := a.Fetch(context.Background(), "software/linux-amd64/2.0/agent.tgz")
		done <- err
	}()
	waitChan(t, tr.held, 30*time.Second, "the agent to have 1 MiB of the object")
	first := relays[tr.heldHost]
	if first == nil {
		t.Fatalf("held a body from %s, not one of the relays", tr.heldHost)
	}
	first.Kill(t)
	close(tr.release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("fetch after killing %s: %v", first.Name, err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("fetch did not finish within 60s of the kill")
	}
	if got := fileSHA(t, filepath.Join(out, "software/linux-amd64/2.0/agent.tgz")); got != sha(big) {
		t.Fatalf("file sha256 %s, want %s", got, sha(big))
	}
	if st := a.Stats(); st.Resumes < 1 || st.Restarts != 0 {
		t.Fatalf("stats %+v: want a resume and no restart", st)
	}
	var second *proc
	for addr, p := range relays {
		if addr != tr.heldHost {
			second = p
		}
	}
	// The other relay answered a Range request with 206: the agent did
	// not start over.
	ranges := tr.rangesOf(second.Addr)
	if len(ranges) == 0 || !strings.HasPrefix(ranges[len(ranges)-1], "bytes=") {
		t.Fatalf("requests to the second relay carried Range %q, want a resume", ranges)
	}
	eventually(t, 5*time.Second, "the second relay's log to show a 206", func() error {
		for _, m := range logLines(second.Log()) {
			if m["message"] == "request" && m["path"] == "/software/linux-amd64/2.0/agent.tgz" && m["status"] == float64(206) {
				return nil
			}
		}
		return errors.New("no 206 for the object in its access log")
	})
	noPartial(t, out)
}

func TestAgentTamperingRelayIsSkipped(t *testing.T) {
	t.Parallel()
	good := makeData(611, 300_000)
	files := map[string][]byte{"security/kb-7.patch": good}
	tree, _, root := publishedTree(t, files)
	origin := startRelayd(t, "--mode", "origin", "--root", tree)
	// A second origin holding the same signed metadata but other bytes,
	// behind a relay that passes them on (it has no root to check them).
	evil := startOrigin(t)
	serveTUF(t, evil, tree)
	bad := bytes.Clone(good)
	bad[1234] ^= 0x20
	evil.set("/security/kb-7.patch", newObject(bad, ""))
	tamper := startRelayd(t, "--mode", "proxy", "--upstream", evil.URL, "--data-dir", t.TempDir(), "--cache-max", "1GiB")
	honest := startRelayd(t, "--mode", "proxy", "--upstream", origin.URL, "--data-dir", t.TempDir(), "--cache-max", "1GiB")

	// Alone, the tampering relay gets the agent nowhere, and leaves
	// nothing behind.
	out := t.TempDir()
	a := libAgent(t, root, []string{tamper.URL}, out, nil, func(c *agent.Config) { c.RetryBudget = 300 * time.Millisecond })
	_, err := a.Fetch(context.Background(), "security/kb-7.patch")
	if !errors.Is(err, agent.ErrDigestMismatch) {
		t.Fatalf("fetch from the tampering relay alone: %v, want ErrDigestMismatch", err)
	}
	if _, err := os.Stat(filepath.Join(out, "security/kb-7.patch")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a file exists at the final path after a digest mismatch (stat: %v)", err)
	}
	noPartial(t, out)

	// With both, each agent ends with the right bytes; run agents until
	// some went to the tampering relay first.
	tr := newWatchTransport()
	skipped := 0
	for i := 0; skipped < 2; i++ {
		if i == 100 {
			t.Fatalf("after 100 agents only %d tried the tampering relay first", skipped)
		}
		out := t.TempDir()
		before := tr.objectGets()[tamper.Addr]
		a := libAgent(t, root, []string{tamper.URL, honest.URL}, out, tr, nil)
		if _, err := a.Fetch(context.Background(), "security/kb-7.patch"); err != nil {
			t.Fatalf("agent %d: %v", i, err)
		}
		if got := fileSHA(t, filepath.Join(out, "security/kb-7.patch")); got != sha(good) {
			t.Fatalf("agent %d wrote sha256 %s, want %s", i, got, sha(good))
		}
		noPartial(t, out)
		if tr.objectGets()[tamper.Addr] > before {
			skipped++
			if st := a.Stats(); st.Restarts < 1 || st.Failovers < 1 {
				t.Fatalf("agent %d went to the tampering relay, stats %+v: want a restart and a failover", i, st)
			}
		}
	}
}

func TestAgentRequestsSpreadOverTheGroup(t *testing.T) {
	t.Parallel()
	tree, _, root := publishedTree(t, map[string][]byte{"security/kb-9.patch": makeData(621, 2000)})
	origin := startRelayd(t, "--mode", "origin", "--root", tree)
	rs := startGroup(t, "spread", origin.URL, "s1", "s2", "s3")
	tr := newWatchTransport()
	const agents = 3000
	// Each agent starts from one relay it was given (as an installer
	// would configure a site's agents) and learns the rest.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	work := make(chan int)
	for range 24 {
		wg.Go(func() {
			for i := range work {
				a := libAgent(t, root, []string{rs[i%3].URL}, "", tr, nil)
				if _, err := a.Fetch(context.Background(), "security/kb-9.patch"); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("agent %d: %w", i, err))
					mu.Unlock()
				}
			}
		})
	}
	for i := range agents {
		work <- i
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d fetches failed, first: %v", len(errs), errs[0])
	}
	gets := tr.objectGets()
	total := 0
	for _, r := range rs {
		n := gets[r.Addr]
		total += n
		t.Logf("%s: %d of %d object requests", r.node, n, agents)
		if n < agents/3*9/10 || n > agents/3*11/10 {
			t.Errorf("%s got %d object requests, want %d ± 10 %%", r.node, n, agents/3)
		}
	}
	if total != agents {
		t.Errorf("%d object requests for %d fetches, want one each", total, agents)
	}
}

func TestAgentWatchSyncsWithinTwoSecondsOfAPublish(t *testing.T) {
	t.Parallel()
	files := map[string][]byte{"security/kb-1.patch": makeData(631, 5000), "software/linux-amd64/1.0/a.tgz": makeData(632, 100_000)}
	tree, key, root := publishedTree(t, files)
	origin := startRelayd(t, "--mode", "origin", "--root", tree)
	relay := startRelayd(t, "--mode", "proxy", "--upstream", origin.URL, "--data-dir", t.TempDir(), "--cache-max", "1GiB",
		"--admin", "127.0.0.1:0")
	admin := relay.WaitLogAddr(t, "admin listening")
	out := t.TempDir()
	w := startProc(t, "agent-watch", []string{relaydBin, "agent", "watch", "--relay", relay.URL, "--root", root, "--out", out,
		"--include", "security/**", "--id", "branch-pc-17", "--sync-jitter", "300ms"}, nil, "")
	type agentsDoc struct {
		Agents     int    `json:"agents"`
		AtNewest   int    `json:"at_newest"`
		Behind     int    `json:"behind"`
		Generation uint64 `json:"generation"`
		Connected  []struct {
			ID         string
			Generation uint64
			LastSeen   time.Time `json:"last_seen"`
		}
	}
	presence := func(wantGen uint64) error {
		r, err := tryGet(newClient(), http.MethodGet, "http://"+admin+"/v1/agents")
		if err != nil {
			return err
		}
		var d agentsDoc
		if err := json.Unmarshal(r.body, &d); err != nil {
			return err
		}
		if d.Agents != 1 || len(d.Connected) != 1 || d.Connected[0].ID != "branch-pc-17" || d.Connected[0].Generation != wantGen ||
			d.Generation != wantGen || d.AtNewest != 1 || d.Behind != 0 || d.Connected[0].LastSeen.IsZero() {
			return fmt.Errorf("/v1/agents: %s", r.body)
		}
		return nil
	}
	eventually(t, 15*time.Second, "the agent to sync generation 1 and be present at it", func() error {
		if w.Exited() {
			return stopErr{Err: fmt.Errorf("agent watch exited: %v", w.WaitErr())}
		}
		if _, err := os.Stat(filepath.Join(out, "security/kb-1.patch")); err != nil {
			return err
		}
		return presence(1)
	})
	if _, err := os.Stat(filepath.Join(out, "software")); err == nil {
		t.Fatal("software/ synced although only security/** is included")
	}
	patch := makeData(633, 7000)
	writeFiles(t, tree, map[string][]byte{"security/kb-2.patch": patch})
	publish(t, tree, key)
	published := time.Now()
	eventually(t, 2*time.Second, "the new patch in the agent's directory", func() error {
		b, err := os.ReadFile(filepath.Join(out, "security/kb-2.patch"))
		if err != nil {
			return err
		}
		if !bytes.Equal(b, patch) {
			return fmt.Errorf("%d bytes, want %d", len(b), len(patch))
		}
		return nil
	})
	t.Logf("synced %v after relayd publish returned", time.Since(published).Round(time.Millisecond))
	eventually(t, 5*time.Second, "the agent to be present at generation 2", func() error { return presence(2) })
	noPartial(t, out)
}

func TestAgentHostileRelays(t *testing.T) {
	t.Parallel()
	obj := makeData(641, 600_000)
	const path = "/security/kb-hostile.patch"
	tree, _, root := publishedTree(t, map[string][]byte{path[1:]: obj})
	origin := startRelayd(t, "--mode", "origin", "--root", tree)
	good := startRelayd(t, "--mode", "proxy", "--upstream", origin.URL, "--data-dir", t.TempDir(), "--cache-max", "1GiB")
	// The same object published by another repository: metadata no
	// key of the agent's root signed.
	tree2, _, _ := publishedTree(t, map[string][]byte{path[1:]: obj})
	elsewhere := startOrigin(t) // where a redirect would lead; must see nothing
	elsewhere.set(path, newObject(bytes.Repeat([]byte{'A'}, len(obj)), ""))
	flusher := func(w http.ResponseWriter) { w.(http.Flusher).Flush() }
	onObject := func(r *http.Request) bool { return r.URL.Path == path }
	onFirst := func(r *http.Request) bool { return r.URL.Path == path && r.Header.Get("Range") == "" }
	onTimestamp := func(r *http.Request) bool { return r.URL.Path == wire.TUFPrefix+"timestamp.json" }
	// Every metadata file but the roots, which the agent has.
	onMeta := func(r *http.Request) bool {
		return strings.HasPrefix(r.URL.Path, wire.TUFPrefix) && !strings.HasSuffix(r.URL.Path, ".root.json")
	}
	cases := []struct {
		name string
		on   func(r *http.Request) bool
		bad  func(w http.ResponseWriter, r *http.Request)
	}{
		{"wrong bytes", onObject, func(w http.ResponseWriter, r *http.Request) {
			b := bytes.Clone(obj)
			b[len(b)-1] ^= 1
			_, _ = w.Write(b)
		}},
		{"truncated body", onFirst, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(len(obj)))
			_, _ = w.Write(obj[:len(obj)/3])
			// Returning short of Content-Length: the server closes the
			// connection.
		}},
		{"endless body", onObject, func(w http.ResponseWriter, r *http.Request) {
			for r.Context().Err() == nil {
				if _, err := w.Write(obj); err != nil {
					break
				}
			}
		}},
		{"endless timestamp", onTimestamp, func(w http.ResponseWriter, r *http.Request) {
			chunk := bytes.Repeat([]byte("{}"), 32<<10)
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					break
				}
			}
		}},
		{"metadata signed with other keys", onMeta, func(w http.ResponseWriter, r *http.Request) {
			b, err := os.ReadFile(filepath.Join(tree2, "-", "tuf", strings.TrimPrefix(r.URL.Path, wire.TUFPrefix)))
			if err != nil {
				http.NotFound(w, r)
				return
			}
			_, _ = w.Write(b)
		}},
		{"redirect elsewhere", onObject, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+path, http.StatusFound)
		}},
		{"slow drip", onObject, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(len(obj)))
			for i := 0; i < len(obj) && r.Context().Err() == nil; i += 16 {
				_, _ = w.Write(obj[i : i+16])
				flusher(w)
				time.Sleep(20 * time.Millisecond)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := startHostile(t, good.URL, c.on, c.bad)
			for i := 0; h.hits.Load() == 0; i++ {
				if i == 100 {
					t.Fatal("after 100 agents none tried the hostile relay")
				}
				out := t.TempDir()
				a := libAgent(t, root, []string{h.URL, good.URL}, out, nil, func(cfg *agent.Config) {
					cfg.StallTimeout, cfg.MinRate, cfg.MaxCatalogBytes = 700*time.Millisecond, 64<<10, 2<<20
				})
				before := h.hits.Load()
				if _, err := a.Fetch(context.Background(), path[1:]); err != nil {
					t.Fatalf("agent %d: %v", i, err)
				}
				if got := fileSHA(t, filepath.Join(out, path[1:])); got != sha(obj) {
					t.Fatalf("agent %d wrote sha256 %s, want %s", i, got, sha(obj))
				}
				noPartial(t, out)
				if h.hits.Load() > before && a.Stats().Failovers < 1 {
					t.Fatalf("agent %d met the hostile relay but did not fail over: %+v", i, a.Stats())
				}
			}
		})
	}
	t.Cleanup(func() {
		if n := elsewhere.getCount(path); n != 0 {
			t.Errorf("the redirect target got %d requests: a redirect to another host was followed", n)
		}
	})
}

func TestAgentFetchKilledLeavesNoFile(t *testing.T) {
	t.Parallel()
	big := makeData(651, 8<<20)
	const p = "software/win-amd64/3.0/setup.exe"
	tree, _, root := publishedTree(t, map[string][]byte{p: big})
	up := startOrigin(t)
	serveTUF(t, up, tree)
	obj := newObject(big, "")
	obj.holdAt = 2 << 20
	up.set("/"+p, obj)
	relay := startRelayd(t, "--mode", "proxy", "--upstream", up.URL, "--data-dir", t.TempDir(), "--cache-max", "1GiB")
	out := t.TempDir()
	fetch := startProc(t, "fetch", []string{relaydBin, "fetch", "--relay", relay.URL, "--root", root, "--out", out, p}, nil, "")
	waitChan(t, obj.held, 30*time.Second, "the origin to hold the object at 2 MiB")
	dir := filepath.Join(out, filepath.Dir(p))
	eventually(t, 10*time.Second, "the partial download to reach 1 MiB", func() error {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && strings.Contains(e.Name(), ".relayd-part-") && fi.Size() >= 1<<20 {
				return nil
			}
		}
		return fmt.Errorf("entries %v", ents)
	})
	fetch.Kill(t)
	if _, err := os.Stat(filepath.Join(out, p)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the killed fetch left a file at the final path (stat: %v)", err)
	}
	close(obj.release)
	// A new fetch completes and removes what the killed one left.
	stdout, stderr, err := runRelayd(t, 60*time.Second, "fetch", "--relay", relay.URL, "--root", root, "--out", out, p)
	if err != nil {
		t.Fatalf("second fetch: %v\n%s%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "1 fetched") {
		t.Errorf("second fetch printed %q", stdout)
	}
	if got := fileSHA(t, filepath.Join(out, p)); got != sha(big) {
		t.Fatalf("file sha256 %s, want %s", got, sha(big))
	}
	noPartial(t, out)
}

func TestFetchCLIErrors(t *testing.T) {
	t.Parallel()
	tree, _, root := publishedTree(t, map[string][]byte{"security/a.patch": makeData(661, 100)})
	origin := startRelayd(t, "--mode", "origin", "--root", tree)
	_, _, otherRoot := publishedTree(t, map[string][]byte{"security/a.patch": makeData(662, 100)})
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no root", []string{"fetch", "--relay", origin.URL, "--out", t.TempDir(), "security/a.patch"}, 2, "--root is required"},
		{"pubkey", []string{"fetch", "--relay", origin.URL, "--pubkey", root, "--out", t.TempDir(), "security/a.patch"}, 2, "Migrating to TUF"},
		{"no path", []string{"fetch", "--relay", origin.URL, "--root", root, "--out", t.TempDir()}, 2, "name at least one catalog path"},
		{"not in catalog", []string{"fetch", "--relay", origin.URL, "--root", root, "--out", t.TempDir(), "security/nope"}, 1, "not in the catalog"},
		{"another repository's root", []string{"fetch", "--relay", origin.URL, "--root", otherRoot, "--out", t.TempDir(), "--retry-budget", "200ms",
			"security/a.patch"}, 1, "not enough signatures"},
		{"loadgen not loopback", []string{"loadgen", "--relay", "http://192.0.2.1:20080", "--root", root}, 2, "not on loopback"},
	} {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, err := runRelayd(t, 30*time.Second, c.args...)
			var ee interface{ ExitCode() int }
			if !errors.As(err, &ee) || ee.ExitCode() != c.code || !strings.Contains(stderr, c.want) {
				t.Fatalf("relayd %s: %v, stderr %q, stdout %q; want exit %d and %q", strings.Join(c.args, " "), err, stderr, stdout, c.code, c.want)
			}
		})
	}
}

func TestLoadgenWatchAgentsFollowAPublish(t *testing.T) {
	t.Parallel()
	tree, key, root := publishedTree(t, map[string][]byte{"security/a.patch": makeData(671, 3000)})
	origin := startRelayd(t, "--mode", "origin", "--root", tree)
	relays := []*proc{
		startRelayd(t, "--mode", "proxy", "--upstream", origin.URL, "--data-dir", t.TempDir(), "--cache-max", "1GiB"),
		startRelayd(t, "--mode", "proxy", "--upstream", origin.URL, "--data-dir", t.TempDir(), "--cache-max", "1GiB"),
	}
	lg := startProc(t, "loadgen", []string{relaydBin, "loadgen", "--relay", relays[0].URL + "," + relays[1].URL, "--root", root,
		"--agents", "200", "--duration", "40s", "--watch", "--stop-after-updates", "1", "--rate", "4000"}, nil, "")
	eventually(t, 20*time.Second, "all loadgen agents connected", func() error {
		if !strings.Contains(lg.Log(), "all 200 agents connected") {
			return fmt.Errorf("loadgen output: %q", lg.Log())
		}
		return nil
	})
	writeFiles(t, tree, map[string][]byte{"security/b.patch": makeData(672, 4000)})
	publish(t, tree, key)
	exited, err := lg.WaitExit(30 * time.Second)
	if !exited || err != nil {
		t.Fatalf("loadgen: exited %v, %v\n%s", exited, err, lg.Log())
	}
	out := lg.Log()
	for _, want := range []string{"generation 2: notified 200/200 within", "updated 200/200, all updated", "failed=0", "LOADGEN agents=200 connected=200"} {
		if !strings.Contains(out, want) {
			t.Errorf("loadgen output lacks %q:\n%s", want, out)
		}
	}
	for _, r := range relays {
		if !strings.Contains(out, "relay "+r.Addr+": ") {
			t.Errorf("loadgen output has no line for relay %s:\n%s", r.Addr, out)
		}
	}
}
