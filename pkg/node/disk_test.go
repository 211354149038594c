package node

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteProbe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := writeProbe(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".probe")); !os.IsNotExist(err) {
		t.Fatal("probe file left behind")
	}
	if err := writeProbe(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a directory that does not exist passed the probe")
	}
}
