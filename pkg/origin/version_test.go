package origin

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/relayd/relayd/pkg/digest"
)

// TestGetConsistentName: dir/<sha256>.name is dir/name while its bytes
// hash to it, with the digest as its ETag; another digest, or the file
// changed since, is not found.
func TestGetConsistentName(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	p := filepath.Join(root, "pool", "a.deb")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	v1 := []byte("version one")
	if err := os.WriteFile(p, v1, 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := New(root, false)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	d1 := digest.FromBytes(v1)
	name := "pool/" + d1.Hex() + ".a.deb"
	obj, err := o.Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	_, err = obj.Body.CopyTo(context.Background(), &b, 0, -1)
	obj.Close()
	if err != nil || !bytes.Equal(b.Bytes(), v1) || obj.ETag != d1.ETag() || obj.Key != name {
		t.Fatalf("%s: %q, etag %s, key %s, %v", name, b.Bytes(), obj.ETag, obj.Key, err)
	}
	if _, err := o.Get(context.Background(), "pool/"+digest.FromBytes([]byte("other")).Hex()+".a.deb"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another digest: %v, want ErrNotFound", err)
	}
	if err := os.WriteFile(p, []byte("version two, longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Get(context.Background(), name); !errors.Is(err, ErrNotFound) {
		t.Fatalf("%s after the file changed: %v, want ErrNotFound", name, err)
	}
}

// TestConsistentNameHashesOneAtATime: while a file is being hashed, a
// request for another version not remembered waits for it (and gives up
// with its context) instead of hashing beside it.
func TestConsistentNameHashesOneAtATime(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	v1 := []byte("version one")
	if err := os.WriteFile(filepath.Join(root, "a.deb"), v1, 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := New(root, false)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	name := digest.FromBytes(v1).Hex() + ".a.deb"
	o.hashes.busy <- struct{}{} // another hash is running
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := o.Get(ctx, name); !errors.Is(err, ErrNotFound) {
		t.Fatalf("while busy, given up: %v, want ErrNotFound", err)
	}
	<-o.hashes.busy
	obj, err := o.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("once free: %v", err)
	}
	obj.Close()
}
