package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestWindowsReplace runs on Windows only: a directory "fsync" succeeds
// (FlushFileBuffers on it would be refused), a file is replaced while
// nobody holds it, and a file another handle holds open is not replaced
// (ErrInUse, after the retries) and keeps its content.
func TestWindowsReplace(t *testing.T) {
	dir := t.TempDir()
	if err := SyncDir(dir); err != nil {
		t.Fatalf("SyncDir: %v", err)
	}
	p := filepath.Join(dir, "f")
	for _, content := range []string{"old", "new"} {
		if err := WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	held, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := root.WriteFile("g", []byte("newer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := RenameIn(root, "g", "f"); !errors.Is(err, ErrInUse) {
		t.Fatalf("replacing a file held open: %v, want ErrInUse", err)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "new" {
		t.Fatalf("the held file reads %q, %v; want it unchanged", b, err)
	}
}
