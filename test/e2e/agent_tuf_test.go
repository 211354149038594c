// Agents as TUF clients end to end: the trusted metadata kept across
// restarts (the rollback floor) and expired metadata refused, with real
// relayd processes and `relayd agent sync` as the agent.
package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/wire"
)

// tufFiles reads every file of tree's TUF repository, by served name.
func tufFiles(t testing.TB, tree string) map[string][]byte {
	t.Helper()
	dir := filepath.Join(tree, "-", "tuf")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".json") {
			out[e.Name()] = readFile(t, filepath.Join(dir, e.Name()))
		}
	}
	if len(out) == 0 {
		t.Fatalf("no TUF metadata in %s", dir)
	}
	return out
}

// serveTUF makes o serve tree's TUF metadata as it is now, at /-/tuf/.
func serveTUF(t testing.TB, o *testOrigin, tree string) {
	t.Helper()
	for name, b := range tufFiles(t, tree) {
		o.set(wire.TUFPath(name), newObject(b, ""))
	}
}

// agentSync runs `relayd agent sync` as a new process.
func agentSync(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runRelayd(t, 60*time.Second, append([]string{"agent", "sync", "--quiet"}, args...)...)
}

// A restarted agent keeps the newest metadata it verified: a relay that
// replays an older generation (validly signed, not expired) is refused,
// and the directory keeps the newer files.
func TestAgentKeepsItsRollbackFloorAcrossRestarts(t *testing.T) {
	t.Parallel()
	const p = "security/kb-1.patch"
	v1, v2 := makeData(681, 3000), makeData(682, 3100)
	tree, keys, root := publishedTree(t, map[string][]byte{p: v1})
	generation1 := tufFiles(t, tree)
	writeFiles(t, tree, map[string][]byte{p: v2})
	publish(t, tree, keys)
	origin := startRelayd(t, "--mode", "origin", "--root", tree)
	relay := startRelayd(t, "--mode", "proxy", "--upstream", origin.URL, "--data-dir", t.TempDir(), "--cache-max", "1GiB", "--root", root)
	out := t.TempDir()
	if stdout, stderr, err := agentSync(t, "--relay", relay.URL, "--root", root, "--out", out); err != nil {
		t.Fatalf("first sync: %v\n%s%s", err, stdout, stderr)
	}
	if got := readFile(t, filepath.Join(out, p)); !bytes.Equal(got, v2) {
		t.Fatalf("first sync wrote %d bytes, want generation 2's %d", len(got), len(v2))
	}
	// A relay frozen at generation 1: its metadata and its object.
	replay := startOrigin(t)
	for name, b := range generation1 {
		replay.set(wire.TUFPath(name), newObject(b, ""))
	}
	replay.set("/"+p, newObject(v1, ""))
	stdout, stderr, err := agentSync(t, "--relay", replay.URL, "--root", root, "--out", out, "--retry-budget", "300ms")
	var ee interface{ ExitCode() int }
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr, "older than the trusted") {
		t.Fatalf("sync from a relay replaying generation 1: %v\nstdout %q\nstderr %q\nwant exit 1 and a rollback refused", err, stdout, stderr)
	}
	if got := readFile(t, filepath.Join(out, p)); !bytes.Equal(got, v2) {
		t.Fatal("the replayed generation 1 replaced generation 2's file")
	}
	if n := replay.getCount("/" + p); n != 0 {
		t.Fatalf("the agent asked the replaying relay for the object %d times", n)
	}
	noPartial(t, out)
}

// An origin that does not re-sign its timestamp: once it expires, an agent
// installs nothing, through a relay or from the origin, and says since
// when; the output directory stays as it was.
func TestAgentRefusesExpiredMetadata(t *testing.T) {
	t.Parallel()
	const p = "security/kb-2.patch"
	tree, keys, root := publishedTree(t, map[string][]byte{p: makeData(691, 2000)})
	// A timestamp that expires in a few seconds, and nobody to re-sign it.
	if stdout, stderr, err := runRelayd(t, 30*time.Second, "publish", tree, "--keys", keys, "--timestamp-only", "--timestamp-expiry", "3s"); err != nil {
		t.Fatalf("relayd publish --timestamp-only: %v\n%s%s", err, stdout, stderr)
	}
	var ts struct {
		Signed struct {
			Expires time.Time `json:"expires"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(tree, "-", "tuf", "timestamp.json")), &ts); err != nil {
		t.Fatal(err)
	}
	if left := time.Until(ts.Signed.Expires); left > 10*time.Second {
		t.Fatalf("timestamp.json expires in %s, want a few seconds", left)
	}
	origin := startRelayd(t, "--mode", "origin", "--root", tree)
	relay := startRelayd(t, "--mode", "proxy", "--upstream", origin.URL, "--data-dir", t.TempDir(), "--cache-max", "1GiB", "--root", root)
	eventually(t, 15*time.Second, "timestamp.json to expire", func() error {
		if time.Now().After(ts.Signed.Expires.Add(time.Second)) {
			return nil
		}
		return errors.New("not yet")
	})
	// What the directory held before: an older copy of the object and a
	// file of the vendor's own. Fresh metadata would replace the first.
	out := t.TempDir()
	before := map[string][]byte{p: makeData(692, 2000), "vendor/notes.txt": []byte("keep me")}
	writeFiles(t, out, before)
	stdout, stderr, err := agentSync(t, "--relay", relay.URL+","+origin.URL, "--root", root, "--out", out, "--retry-budget", "300ms")
	var ee interface{ ExitCode() int }
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr, "metadata expired since") {
		t.Fatalf("sync with an expired timestamp: %v\nstdout %q\nstderr %q\nwant exit 1 and \"metadata expired since\"", err, stdout, stderr)
	}
	for name, want := range before {
		if got := readFile(t, filepath.Join(out, filepath.FromSlash(name))); !bytes.Equal(got, want) {
			t.Errorf("%s changed although the metadata expired", name)
		}
	}
	_ = filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(out, path)
		rel = filepath.ToSlash(rel)
		if err == nil && !d.IsDir() && before[rel] == nil && !strings.HasPrefix(rel, ".relayd-agent/") {
			t.Errorf("%s appeared in the output directory", rel)
		}
		return nil
	})
}
