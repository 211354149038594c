package e2e

// Interoperability (issue 13, item 7): go-tuf's own updater, not relayd
// code, configured with nothing but 1.root.json, the metadata URL
// {relay}/-/tuf/ and the targets URL {relay}/, verifies and downloads
// targets through a two-level tree of real relayd processes, delegated
// (a team role) and hashed-bin ones alike, and after a publish and a
// root rotation refreshes to the new root and the new object.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// stockUpdater is go-tuf's updater trusting root, with the metadata and
// targets of relay and its cache in dir.
func stockUpdater(t testing.TB, relay string, root []byte, dir string) *updater.Updater {
	t.Helper()
	cfg, err := config.New(relay+"/-/tuf/", root)
	if err != nil {
		t.Fatalf("go-tuf config: %v", err)
	}
	cfg.RemoteTargetsURL = relay + "/"
	cfg.PrefixTargetsWithHash = true
	cfg.LocalMetadataDir = filepath.Join(dir, "metadata")
	cfg.LocalTargetsDir = filepath.Join(dir, "targets")
	if err := cfg.EnsurePathsExist(); err != nil {
		t.Fatalf("go-tuf config: %v", err)
	}
	u, err := updater.New(cfg)
	if err != nil {
		t.Fatalf("go-tuf updater: %v", err)
	}
	return u
}

// stockDownload looks path up with u and downloads it through u's targets
// URL, verified by go-tuf against its length and hash; it fails t unless
// the bytes are want.
func stockDownload(t testing.TB, u *updater.Updater, path string, want []byte, dir string) {
	t.Helper()
	info, err := u.GetTargetInfo(path)
	if err != nil {
		t.Fatalf("go-tuf: target %s: %v", path, err)
	}
	_, got, err := u.DownloadTarget(info, filepath.Join(dir, strings.ReplaceAll(path, "/", "_")), "")
	if err != nil {
		t.Fatalf("go-tuf: download %s: %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("go-tuf: %s: %d bytes, not the published ones (%d bytes)", path, len(got), len(want))
	}
}

// trustedRoles are the targets roles go-tuf has loaded and verified.
func trustedRoles(u *updater.Updater) []string {
	var out []string
	for name := range u.GetTrustedMetadataSet().Targets {
		out = append(out, name)
	}
	return out
}

func hasRole(roles []string, prefix string) bool {
	for _, r := range roles {
		if strings.HasPrefix(r, prefix) {
			return true
		}
	}
	return false
}

// TestTUFStockClient: origin → hq (two mirrors, one group) → a proxy
// below them, every relay given only 1.root.json. go-tuf's updater,
// pointed at the proxy, finds a security target through the delegated
// security role and a software target through rest's hashed bins, and
// downloads both by their consistent names. Then one object changes and
// the root key is rotated (2.root.json); a new updater starting from the
// root the first one persisted walks to root 2 through the proxy and
// gets the new object.
func TestTUFStockClient(t *testing.T) {
	t.Parallel()
	files := map[string][]byte{}
	for i := range 4 {
		files[fmt.Sprintf("security/2026/kb-%03d.patch", i)] = makeData(uint64(1700+i), 3000+i*100)
	}
	// More than the 256 targets a leaf role lists itself: rest
	// delegates to hashed bins.
	for i := range 300 {
		files[fmt.Sprintf("software/pkgs/p-%03d.bin", i)] = makeData(uint64(1800+i), 100+i)
	}
	tree := t.TempDir()
	writeFiles(t, tree, files)
	keys, rootFile := initTree(t, tree)
	run := func(args ...string) {
		t.Helper()
		if out, stderr, err := runRelayd(t, 60*time.Second, args...); err != nil {
			t.Fatalf("relayd %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
	}
	run("keygen", "--role", "security", "--out", keys)
	run("tuf", "delegate", tree, "--role", "security", "--paths", "security/**", "--key", filepath.Join(keys, "security.pub"), "--keys", keys)
	publish(t, tree, keys)
	root1 := readFile(t, rootFile)

	tk := treeKeygen(t)
	origin := startRelayd(t, "--mode", "origin", "--root", tree, "--node", "origin", "--tree-key-file", tk)
	hq1 := startTreeRelay(t, "hq-1", "hq", "mirror", "", "--upstream", origin.URL, "--root", rootFile, "--tree-key-file", tk)
	hq2 := startTreeRelay(t, "hq-2", "hq", "mirror", hq1.gossip, "--upstream", origin.URL, "--root", rootFile, "--tree-key-file", tk)
	leaf := startTreeRelay(t, "br-1", "branch", "proxy", "", "--upstream", hq1.URL+","+hq2.URL, "--root", rootFile, "--tree-key-file", tk)
	ts1 := readFile(t, timestampFile(tree))
	for _, r := range []*treeRelay{hq1, hq2, leaf} {
		waitCatalog(t, r.proc, ts1, 60*time.Second)
	}

	dir := t.TempDir()
	u := stockUpdater(t, leaf.URL, root1, dir)
	if err := u.Refresh(); err != nil {
		t.Fatalf("go-tuf refresh through br-1: %v", err)
	}
	const secPath, swPath = "security/2026/kb-002.patch", "software/pkgs/p-123.bin"
	stockDownload(t, u, secPath, files[secPath], dir)
	stockDownload(t, u, swPath, files[swPath], dir)
	stockDownload(t, u, "security/2026/kb-000.patch", files["security/2026/kb-000.patch"], dir)
	roles := trustedRoles(u)
	for _, want := range []string{"security", "rest", "rest-bin-"} {
		if !hasRole(roles, want) {
			t.Errorf("go-tuf did not walk role %s* (it verified %v)", want, roles)
		}
	}
	if v := u.GetTrustedMetadataSet().Root.Signed.Version; v != 1 {
		t.Errorf("go-tuf trusts root version %d, want 1", v)
	}

	// Rotate the root key (2.root.json, signed by the old and the new
	// key), then publish a changed object.
	newKeys := filepath.Join(t.TempDir(), "keys")
	run("keygen", "--role", "root2", "--out", newKeys)
	run("tuf", "rotate", tree, "--role", "root", "--add-key", filepath.Join(newKeys, "root2.pub"),
		"--remove-key", filepath.Join(keys, "root.pub"), "--keys", keys, "--keys", newKeys)
	if _, err := os.Stat(filepath.Join(tree, "-", "tuf", "2.root.json")); err != nil {
		t.Fatalf("the rotation wrote no 2.root.json: %v", err)
	}
	changed := makeData(1999, 3500)
	writeFiles(t, tree, map[string][]byte{secPath: changed})
	swChanged := makeData(1998, 777)
	writeFiles(t, tree, map[string][]byte{swPath: swChanged})
	publish(t, tree, keys)
	ts2 := readFile(t, timestampFile(tree))
	for _, r := range []*treeRelay{hq1, hq2, leaf} {
		waitCatalog(t, r.proc, ts2, 60*time.Second)
	}

	// A new updater from the root the first one persisted (version 1).
	persisted, err := os.ReadFile(filepath.Join(dir, "metadata", "root.json"))
	if err != nil {
		t.Fatalf("go-tuf's persisted root: %v", err)
	}
	u2 := stockUpdater(t, leaf.URL, persisted, dir)
	if err := u2.Refresh(); err != nil {
		t.Fatalf("go-tuf refresh through br-1 after the rotation: %v", err)
	}
	if v := u2.GetTrustedMetadataSet().Root.Signed.Version; v != 2 {
		t.Errorf("go-tuf trusts root version %d after the rotation, want 2", v)
	}
	stockDownload(t, u2, secPath, changed, dir)
	stockDownload(t, u2, swPath, swChanged, dir)
	stockDownload(t, u2, "software/pkgs/p-000.bin", files["software/pkgs/p-000.bin"], dir)
}
