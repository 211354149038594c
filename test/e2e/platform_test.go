package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAgentWritesOnlyPortableNames: a published tree holds names Windows
// would read as something else (a stream, a device, a name without its
// trailing dot). `relayd agent sync` writes the rest and says so once;
// `relayd fetch` refuses them, and reads a backslash as a separator. The
// same on every system, so it is checked here on Linux.
func TestAgentWritesOnlyPortableNames(t *testing.T) {
	t.Parallel()
	good := makeData(901, 5000)
	tree, _, root := publishedTree(t, map[string][]byte{
		"docs/a.txt":   good,
		"docs/b:c":     makeData(902, 100),
		"docs/nul.txt": makeData(903, 100),
		"docs/d.":      makeData(904, 100),
	})
	origin := startRelayd(t, "--mode", "origin", "--root", tree)

	out := t.TempDir()
	stdout, stderr, err := runRelayd(t, 60*time.Second, "agent", "sync", "--relay", origin.URL, "--root", root, "--out", out)
	if err != nil {
		t.Fatalf("agent sync: %v\n%s%s", err, stdout, stderr)
	}
	if n := strings.Count(stderr, "catalog paths not written"); n != 1 || !strings.Contains(stderr, "paths=3") && !strings.Contains(stderr, `"paths":3`) {
		t.Errorf("agent sync said %d times that paths were not written (want once, 3 paths):\n%s", n, stderr)
	}
	if got := fileSHA(t, filepath.Join(out, "docs", "a.txt")); got != sha(good) {
		t.Fatalf("docs/a.txt sha256 %s, want %s", got, sha(good))
	}
	if names := dirNames(t, filepath.Join(out, "docs")); !slices.Equal(names, []string{"a.txt"}) {
		t.Fatalf("docs/ holds %q, want only a.txt", names)
	}

	out = t.TempDir()
	for _, p := range []string{"docs/b:c", "docs/nul.txt", "docs/d."} {
		_, stderr, err := runRelayd(t, 60*time.Second, "fetch", "--relay", origin.URL, "--root", root, "--out", out, p)
		if err == nil || !strings.Contains(stderr, "is not a file name every system reads alike") {
			t.Errorf("fetch %s: %v, stderr %q; want it refused", p, err, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "docs")); err == nil {
		t.Errorf("a refused fetch created docs/")
	}
	stdout, stderr, err = runRelayd(t, 60*time.Second, "fetch", "--relay", origin.URL, "--root", root, "--out", out, `docs\a.txt`)
	if err != nil {
		t.Fatalf(`fetch docs\a.txt: %v\n%s%s`, err, stdout, stderr)
	}
	if got := fileSHA(t, filepath.Join(out, "docs", "a.txt")); got != sha(good) {
		t.Fatalf(`fetch docs\a.txt wrote sha256 %s, want %s`, got, sha(good))
	}
}
