package e2e

// Relays as TUF clients and mirrors of the metadata (issue 13, items 3
// and 4), end to end: a mirror group and a child group below it verify
// from 1.root.json, a sync with nothing new is one timestamp request, a
// timestamp the origin re-signs reaches the leaves without moving an
// object, and expired metadata leaves the relays serving what they hold
// while the tree says since when.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// metadataGets counts the GETs of /-/tuf/ files in an access log, by
// file name.
func metadataGets(logText string) map[string]int {
	out := map[string]int{}
	for _, m := range logLines(logText) {
		p, _ := m["path"].(string)
		if name, ok := strings.CutPrefix(p, "/-/tuf/"); ok && m["message"] == "request" && m["method"] == http.MethodGet {
			out[name]++
		}
	}
	return out
}

// servedTimestamp is the timestamp.json a node serves (nil if none).
func servedTimestamp(c *http.Client, url string) []byte {
	r, err := tryGet(c, http.MethodGet, url+"/-/tuf/timestamp.json")
	if err != nil || r.status != http.StatusOK {
		return nil
	}
	return r.body
}

// TestTUFTwoLevelMirrors: origin → hq (two mirrors, one group) → branch
// (a mirror group below hq), every relay with --root only. Each level
// serves the metadata it verified, byte for byte the origin's; a stock
// TUF client (tufclient) verifies through the leaf; a consistent target
// name is served by digest; a sync with nothing new costs its parent one
// timestamp request and no object; a new generation moves only what
// changed.
func TestTUFTwoLevelMirrors(t *testing.T) {
	t.Parallel()
	c := newClient()
	files := map[string][]byte{}
	for i := range 6 {
		files[fmt.Sprintf("security/2026/kb-%03d.patch", i)] = makeData(uint64(1300+i), 8<<10+i*1000)
	}
	files["software/linux-amd64/2.0/agent.tgz"] = makeData(1310, 300<<10)
	tree, keys, root := publishedTree(t, files)
	tk := treeKeygen(t)
	origin := startRelayd(t, "--mode", "origin", "--root", tree, "--node", "origin", "--tree-key-file", tk)
	hq1 := startTreeRelay(t, "hq-1", "hq", "mirror", "", "--upstream", origin.URL, "--root", root, "--tree-key-file", tk)
	hq2 := startTreeRelay(t, "hq-2", "hq", "mirror", hq1.gossip, "--upstream", origin.URL, "--root", root, "--tree-key-file", tk)
	br1 := startTreeRelay(t, "br-1", "branch", "mirror", "", "--upstream", hq1.URL+","+hq2.URL, "--root", root, "--tree-key-file", tk)
	ts1 := readFile(t, timestampFile(tree))
	for _, r := range []*treeRelay{hq1, hq2, br1} {
		waitCatalog(t, r.proc, ts1, 60*time.Second)
	}
	// Every level serves the files it verified, the origin's bytes.
	for _, name := range []string{"1.root.json", "1.snapshot.json", "1.targets.json"} {
		want := readFile(t, filepath.Join(tree, "-", "tuf", name))
		for _, r := range []*treeRelay{hq1, br1} {
			resp := get(t, c, http.MethodGet, r.URL+"/-/tuf/"+name)
			wantBody(t, resp, want, r.node+" "+name)
			if cc := resp.header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
				t.Errorf("%s %s: Cache-Control %q, want immutable", r.node, name, cc)
			}
		}
	}
	if cc := get(t, c, http.MethodGet, br1.URL+"/-/tuf/timestamp.json").header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("br-1 timestamp.json: Cache-Control %q, want no-cache", cc)
	}
	wantStatus(t, get(t, c, http.MethodGet, br1.URL+"/-/tuf/2.root.json"), http.StatusNotFound, "br-1 2.root.json (the end of the root chain)")
	// A TUF client that trusts only 1.root.json verifies the whole tree
	// through the leaf, and every object it lists is there.
	reader := startGenReader(t, br1.URL, root)
	eventually(t, 30*time.Second, "a verified round through br-1", func() error {
		if reader.count(1) == 0 {
			return fmt.Errorf("no complete round yet")
		}
		return nil
	})
	reader.halt()
	reader.mu.Lock()
	for _, p := range reader.problems {
		t.Errorf("reader: %s", p)
	}
	reader.mu.Unlock()
	// Consistent target names: dir/<sha256>.name is the object, by digest.
	const agentPath = "software/linux-amd64/2.0/agent.tgz"
	hashed := "software/linux-amd64/2.0/" + sha(files[agentPath]) + ".agent.tgz"
	wantObject(t, get(t, c, http.MethodGet, br1.URL+"/"+hashed), files[agentPath], "br-1 consistent target name")
	wantStatus(t, get(t, c, http.MethodGet, br1.URL+"/software/linux-amd64/2.0/"+strings.Repeat("0", 64)+".agent.tgz"),
		http.StatusNotFound, "a hash that is not the target's")

	// relayd tree at hq-1 shows the metadata's age of every relay: its
	// group's from gossip, the branch's from its reports.
	eventually(t, 20*time.Second, "relayd tree at hq-1 to show every relay's metadata age", func() error {
		out, stderr, err := runRelayd(t, 10*time.Second, "tree", "--admin", hq1.admin)
		if err != nil {
			return fmt.Errorf("relayd tree: %v: %s", err, stderr)
		}
		for _, node := range []string{"hq-1", "hq-2", "br-1"} {
			if !lineHas(out, node, "verified ") {
				return fmt.Errorf("%s without its metadata age:\n%s", node, out)
			}
		}
		return nil
	})

	// A sync with nothing new: one timestamp request to the parent, no
	// other metadata, no object.
	originBefore, originMeta := objectGets(origin.Log()), metadataGets(origin.Log())
	syncNow(t, strings.TrimPrefix(hq1.admin, "http://"))
	eventually(t, 5*time.Second, "hq-1's timestamp request in the origin's log", func() error {
		if n := metadataGets(origin.Log())["timestamp.json"]; n != originMeta["timestamp.json"]+1 {
			return fmt.Errorf("%d timestamp requests, want %d", n, originMeta["timestamp.json"]+1)
		}
		return nil
	})
	if d := diffCounts(originMeta, metadataGets(origin.Log())); len(d) != 1 || d["timestamp.json"] != 1 {
		t.Errorf("a no-change sync of hq-1 asked the origin for metadata %v, want timestamp.json once", d)
	}
	if d := diffCounts(originBefore, objectGets(origin.Log())); len(d) != 0 {
		t.Errorf("a no-change sync of hq-1 fetched objects %v", d)
	}
	parentMeta := metadataGets(hq1.Log() + hq2.Log())
	parentObjects := objectGets(hq1.Log() + hq2.Log())
	syncNow(t, strings.TrimPrefix(br1.admin, "http://"))
	eventually(t, 5*time.Second, "br-1's timestamp request in hq's logs", func() error {
		if n := metadataGets(hq1.Log() + hq2.Log())["timestamp.json"]; n != parentMeta["timestamp.json"]+1 {
			return fmt.Errorf("%d timestamp requests, want %d", n, parentMeta["timestamp.json"]+1)
		}
		return nil
	})
	if d := diffCounts(parentMeta, metadataGets(hq1.Log()+hq2.Log())); len(d) != 1 {
		t.Errorf("a no-change sync of br-1 asked hq for metadata %v, want timestamp.json once", d)
	}
	if d := diffCounts(parentObjects, objectGets(hq1.Log()+hq2.Log())); len(d) != 0 {
		t.Errorf("a no-change sync of br-1 fetched objects %v", d)
	}

	// Generation 2 changes one object: pushed down, it reaches the leaf,
	// and the origin serves that one object once per group that needs it.
	const changed = "security/2026/kb-002.patch"
	writeFiles(t, tree, map[string][]byte{changed: makeData(1399, 9000)})
	publish(t, tree, keys)
	ts2 := readFile(t, timestampFile(tree))
	for _, r := range []*treeRelay{hq1, hq2, br1} {
		waitCatalog(t, r.proc, ts2, 30*time.Second)
	}
	wantObject(t, get(t, c, http.MethodGet, br1.URL+"/"+changed), makeData(1399, 9000), "the changed object at the leaf")
	if d := diffCounts(originBefore, objectGets(origin.Log())); len(d) != 1 || d["/"+changed] != 1 {
		t.Errorf("generation 2 took from the origin %v, want /%s once", d, changed)
	}
}

// TestTUFTimestampResign: the origin re-signs a short-lived timestamp with
// its online key; each new timestamp reaches the leaf (two levels down)
// with the same generation, and no object moves for it.
func TestTUFTimestampResign(t *testing.T) {
	t.Parallel()
	c := newClient()
	files := map[string][]byte{"security/a.patch": makeData(1401, 4000), "software/b.bin": makeData(1402, 64<<10)}
	// 20 s: the origin checks every 2 s and re-signs with less than 10 s
	// left, so a new timestamp every 10 s or so.
	tree, keys, root := publishedTree(t, files, "--timestamp-expiry", "20s")
	origin := startRelayd(t, "--mode", "origin", "--root", tree, "--timestamp-key", filepath.Join(keys, "timestamp.key"),
		"--timestamp-expiry", "20s")
	hq := startRelayd(t, "--mode", "mirror", "--node", "hq-1", "--upstream", origin.URL, "--root", root, "--data-dir", t.TempDir())
	leaf := startRelayd(t, "--mode", "mirror", "--node", "br-1", "--upstream", hq.URL, "--root", root, "--data-dir", t.TempDir())
	ts1 := readFile(t, timestampFile(tree))
	waitCatalog(t, leaf, ts1, 60*time.Second)
	objectsBefore := objectGets(origin.Log())
	hqObjects := objectGets(hq.Log())
	v1 := tsVersion(ts1)

	var resigned []byte
	eventually(t, 60*time.Second, "a re-signed timestamp at the leaf", func() error {
		b := servedTimestamp(c, leaf.URL)
		if tsVersion(b) <= v1 {
			return fmt.Errorf("the leaf serves timestamp version %d", tsVersion(b))
		}
		resigned = b
		return nil
	})
	if g := tsGeneration(resigned); g != 1 {
		t.Errorf("the re-signed timestamp names generation %d, want 1", g)
	}
	if !strings.Contains(origin.Log(), "timestamp re-signed by the origin") {
		t.Error("the origin did not log the re-sign")
	}
	// The leaf serves what the origin signed, byte for byte (or a newer
	// one already).
	if now := readFile(t, timestampFile(tree)); tsVersion(now) == tsVersion(resigned) && string(now) != string(resigned) {
		t.Error("the leaf's timestamp differs from the origin's of the same version")
	}
	if d := diffCounts(objectsBefore, objectGets(origin.Log())); len(d) != 0 {
		t.Errorf("the re-sign moved objects from the origin: %v", d)
	}
	if d := diffCounts(hqObjects, objectGets(hq.Log())); len(d) != 0 {
		t.Errorf("the re-sign moved objects from hq to the leaf: %v", d)
	}
	wantObject(t, get(t, c, http.MethodGet, leaf.URL+"/security/a.patch"), files["security/a.patch"], "the leaf's object after the re-sign")
}

// TestTUFExpiredMetadata: the origin stops re-signing (it has no timestamp
// key) and the timestamp expires. Relays keep serving the objects they
// hold; `relayd tree`, `relayd status`, /metrics and the logs say the
// metadata expired, for the mirror below the origin and for the relay
// below it (which cannot get fresh metadata either).
func TestTUFExpiredMetadata(t *testing.T) {
	t.Parallel()
	c := newClient()
	files := map[string][]byte{"security/a.patch": makeData(1501, 4000), "software/b.bin": makeData(1502, 64<<10)}
	tree, _, root := publishedTree(t, files, "--timestamp-expiry", "8s")
	expires := time.Now().Add(8 * time.Second)
	tk := treeKeygen(t)
	origin := startRelayd(t, "--mode", "origin", "--root", tree, "--tree-key-file", tk, "--admin", "127.0.0.1:0")
	originAdmin := "http://" + origin.WaitLogAddr(t, "admin listening")
	hq := startTreeRelay(t, "hq-1", "hq", "mirror", "", "--upstream", origin.URL, "--root", root, "--tree-key-file", tk,
		"--mirror-interval", "1s")
	leaf := startTreeRelay(t, "br-1", "branch", "proxy", "", "--upstream", hq.URL, "--root", root, "--tree-key-file", tk,
		"--mirror-interval", "1s")
	ts1 := readFile(t, timestampFile(tree))
	waitCatalog(t, hq.proc, ts1, 30*time.Second)
	waitCatalog(t, leaf.proc, ts1, 30*time.Second)
	wantObject(t, get(t, c, http.MethodGet, leaf.URL+"/software/b.bin"), files["software/b.bin"], "the leaf's object before expiry")
	if time.Now().After(expires) {
		t.Fatal("the metadata expired before the relays held it: the machine is too slow for this test's 8 s")
	}

	// The tree at the origin: both relays, expired since the timestamp's
	// expiry.
	var out string
	eventually(t, 60*time.Second, "relayd tree to show both relays expired", func() error {
		var err error
		var stderr string
		out, stderr, err = runRelayd(t, 10*time.Second, "tree", "--admin", originAdmin)
		if err != nil {
			return fmt.Errorf("relayd tree: %v: %s", err, stderr)
		}
		for _, node := range []string{"hq-1", "br-1"} {
			if !lineHas(out, node, "EXPIRED since") {
				return fmt.Errorf("%s not shown expired:\n%s", node, out)
			}
		}
		return nil
	})
	t.Logf("relayd tree at the origin:\n%s", out)
	// Objects are still served, by the mirror and by the proxy.
	for _, r := range []*treeRelay{hq, leaf} {
		wantObject(t, get(t, c, http.MethodGet, r.URL+"/security/a.patch"), files["security/a.patch"], r.node+" object after expiry")
		wantStatus(t, get(t, c, http.MethodGet, r.URL+"/-/readyz"), http.StatusOK, r.node+" readyz after expiry")
	}
	wantObject(t, get(t, c, http.MethodGet, leaf.URL+"/software/b.bin"), files["software/b.bin"], "the leaf's cached object after expiry")
	// relayd status and /metrics of the leaf.
	stdout, stderr, err := runRelayd(t, 10*time.Second, "status", "--admin", leaf.admin)
	if err != nil || !strings.Contains(stdout, "expired since") {
		t.Errorf("relayd status of the leaf: %v %s\n%s", err, stderr, stdout)
	}
	m := get(t, c, http.MethodGet, leaf.admin+"/metrics").body
	if v, ok := metric(m, "relayd_tuf_metadata_expires_timestamp_seconds"); !ok || v > float64(time.Now().Unix()) {
		t.Errorf("leaf relayd_tuf_metadata_expires_timestamp_seconds = %v (present %v), want a time past", v, ok)
	}
	if v, ok := metric(m, "relayd_tuf_generation"); !ok || v != 1 {
		t.Errorf("leaf relayd_tuf_generation = %v (present %v), want 1", v, ok)
	}
	eventually(t, 20*time.Second, "an expired update counted and logged at the leaf", func() error {
		m := get(t, c, http.MethodGet, leaf.admin+"/metrics").body
		if v, _ := metric(m, `relayd_tuf_update_failures_total{reason="expired"}`); v < 1 {
			return fmt.Errorf("relayd_tuf_update_failures_total{reason=\"expired\"} = %v", v)
		}
		if !strings.Contains(leaf.Log(), "metadata expired since") {
			return fmt.Errorf("no \"metadata expired since\" line in the leaf's log")
		}
		return nil
	})
	// The JSON tree carries the expiry for every relay.
	stdout, _, err = runRelayd(t, 10*time.Second, "tree", "--json", "--admin", originAdmin)
	if err != nil {
		t.Fatal(err)
	}
	var view struct {
		Children []struct {
			Members []struct {
				Node         string `json:"node"`
				ExpiredSince string `json:"expired_since"`
			} `json:"members"`
		} `json:"children"`
	}
	if err := json.Unmarshal([]byte(stdout), &view); err != nil || len(view.Children) != 1 || len(view.Children[0].Members) != 1 ||
		view.Children[0].Members[0].ExpiredSince == "" {
		t.Errorf("relayd tree --json: %v\n%s", err, stdout)
	}
}

// lineHas reports whether a line of out holds both a and b.
func lineHas(out, a, b string) bool {
	for line := range strings.SplitSeq(out, "\n") {
		if strings.Contains(line, a) && strings.Contains(line, b) {
			return true
		}
	}
	return false
}
