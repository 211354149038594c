package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWriteFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "state.json")
	for _, content := range []string{"first", "second, longer", "3"} {
		if err := WriteFile(p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Fatalf("read back %q, %v; want %q", got, err, content)
		}
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	onlyFile(t, filepath.Join(dir, "sub"), "state.json")
}

func TestWriteFileFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// The target is a directory: the rename fails, the temporary file
	// goes.
	target := filepath.Join(dir, "taken")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(target, []byte("x"), 0o644); err == nil {
		t.Fatal("replacing a non-empty directory succeeded")
	}
	onlyFile(t, dir, "taken")
	// The parent is a file: nothing can be created.
	if err := WriteFile(filepath.Join(target, "x", "y"), []byte("x"), 0o644); err == nil {
		t.Fatal("writing below a file succeeded")
	}
}

// onlyFile checks dir holds name and nothing else (no temporary file).
func onlyFile(t *testing.T, dir, name string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != name {
		t.Fatalf("%s holds %q, want only %s", dir, names, name)
	}
}

func TestSyncDir(t *testing.T) {
	t.Parallel()
	if err := SyncDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("SyncDir of a missing directory: %v", err)
	}
}

func TestRenameIn(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := root.Mkdir("sub", 0o755); err != nil {
		t.Fatal(err)
	}
	final := filepath.Join("sub", "f")
	for _, content := range []string{"old", "new"} {
		tmp := filepath.Join("sub", ".f.tmp")
		if err := root.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := RenameIn(root, tmp, final); err != nil {
			t.Fatal(err)
		}
		if err := SyncDirIn(root, "sub"); err != nil {
			t.Fatal(err)
		}
		if got, err := root.ReadFile(final); err != nil || string(got) != content {
			t.Fatalf("read back %q, %v; want %q", got, err, content)
		}
	}
	onlyFile(t, filepath.Join(dir, "sub"), "f")
	if err := RenameIn(root, "missing", "x"); !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrInUse) {
		t.Fatalf("renaming a missing file: %v", err)
	}
	if err := SyncDirIn(root, "missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("SyncDirIn of a missing directory: %v", err)
	}
}

// TestRetry checks the retry of a rename another program blocks (which
// only Windows does) with a stand-in for the Windows errors and a clock
// that does not sleep.
func TestRetry(t *testing.T) {
	t.Parallel()
	errBlocked := errors.New("blocked by another program")
	errOther := errors.New("no such file")
	transient := func(err error) bool { return errors.Is(err, errBlocked) }
	var budget time.Duration
	for _, d := range renameDelays {
		budget += d
	}
	if budget < time.Second || budget > 3*time.Second {
		t.Fatalf("the retries wait %v in all, want between 1 s and 3 s", budget)
	}
	for _, tc := range []struct {
		name     string
		results  []error // what each attempt returns; the last repeats
		attempts int
		want     error // nil: success
		inUse    bool
	}{
		{"at once", []error{nil}, 1, nil, false},
		{"after two refusals", []error{errBlocked, errBlocked, nil}, 3, nil, false},
		{"not retried", []error{errOther}, 1, errOther, false},
		{"refusal then other error", []error{errBlocked, errOther}, 2, errOther, false},
		{"always blocked", []error{errBlocked}, len(renameDelays) + 1, errBlocked, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			attempts := 0
			var slept time.Duration
			err := retry(func() error {
				err := tc.results[min(attempts, len(tc.results)-1)]
				attempts++
				return err
			}, transient, func(d time.Duration) { slept += d })
			if attempts != tc.attempts {
				t.Errorf("%d attempts, want %d", attempts, tc.attempts)
			}
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			if errors.Is(err, ErrInUse) != tc.inUse {
				t.Errorf("error %v: wraps ErrInUse %v, want %v", err, !tc.inUse, tc.inUse)
			}
			if tc.inUse && slept != budget {
				t.Errorf("slept %v before giving up, want %v", slept, budget)
			}
		})
	}
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFiles(dir, map[string][]byte{"a": []byte("new a"), "b": []byte("b")}, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"a": "new a", "b": "b"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(b) != want {
			t.Fatalf("%s: %q, %v; want %q", name, b, err, want)
		}
		if st, _ := os.Stat(filepath.Join(dir, name)); st.Mode().Perm() != 0o644 {
			t.Fatalf("%s: mode %v", name, st.Mode())
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("temporary files left: %v", ents)
	}
	// A name that cannot be created: an error, and no temporary file.
	if err := WriteFiles(dir, map[string][]byte{"c": []byte("c"), "no/such/dir": []byte("x")}, 0o644); err == nil {
		t.Fatal("a name in a missing directory was written")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Fatalf("a failed WriteFiles left files: %v", ents)
	}
}
