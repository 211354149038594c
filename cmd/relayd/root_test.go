package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/relayd/relayd/internal/tuftest"
)

// writeTestRoot writes a valid self-signed TUF root (one key for every
// role) as dir/1.root.json and returns its path.
func writeTestRoot(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "1.root.json")
	if err := os.WriteFile(p, tuftest.Root(t), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
