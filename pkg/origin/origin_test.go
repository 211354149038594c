package origin

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestGet(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	write := func(p string, b []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	body := []byte("a plain package file")
	write(filepath.Join(root, "pool", "a.deb"), body)
	write(filepath.Join(base, "secret"), []byte("outside the root"))
	for name, target := range map[string]string{
		"up":       "../secret",                   // relative, out of the root
		"absolute": filepath.Join(base, "secret"), // absolute, out of the root
		"inside":   "pool/a.deb",                  // stays inside: served
	} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	o, err := New(root, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	if o.escapes == nil {
		t.Fatal("os.Root's escape error was not found: escaping symlinks would answer 500")
	}

	for _, key := range []string{"pool/a.deb", "inside"} {
		obj, err := o.Get(context.Background(), key)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		var got bytes.Buffer
		_, err = obj.Body.CopyTo(context.Background(), &got, 0, -1)
		obj.Close()
		if err != nil || !bytes.Equal(got.Bytes(), body) || obj.Size != int64(len(body)) {
			t.Fatalf("%s: %q (size %d), err %v", key, got.Bytes(), obj.Size, err)
		}
		if obj.ETag == "" || obj.Header.Get("Content-Type") == "" {
			t.Fatalf("%s: ETag %q, Content-Type %q", key, obj.ETag, obj.Header.Get("Content-Type"))
		}
	}
	// Not found, not an error of the origin (the handler answers 404,
	// not 500): a symlink out of the root, a directory, a missing file.
	for _, key := range []string{"up", "absolute", "pool", "missing.deb"} {
		if _, err := o.Get(context.Background(), key); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", key, err)
		}
	}
}
