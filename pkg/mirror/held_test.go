package mirror_test

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/mirror"
)

// TestHeldGenerationStaysServable: while Keep names a generation older
// than the live one (a ring open at it), its objects stay on disk through
// later generations and are served by consistent name (and listed to the
// proxy cache by it); once Keep lets it go, Release collects them like
// any older generation's.
func TestHeldGenerationStaysServable(t *testing.T) {
	t.Parallel()
	o := newTestOrigin(t, files)
	var mu sync.Mutex
	var keep []uint64
	dir := t.TempDir()
	f := newMirror(t, o, dir, func(c *mirror.Config) {
		c.Keep = func() []uint64 { mu.Lock(); defer mu.Unlock(); return append([]uint64(nil), keep...) }
	})
	ctx := context.Background()
	if err := f.m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	keep = []uint64{1}
	mu.Unlock()
	const p = "security/2026/a.patch"
	old := catalog.Object{Path: p, Digest: catalogDigest(t, o, p)}
	// Two more generations, each changing the path again: generation 1
	// stays held throughout.
	for i, g := range []uint64{2, 3} {
		o.write(p, randBytes(5000+i, uint64(40+i)))
		if got := o.publish(); got != g {
			t.Fatalf("generation %d, want %d", got, g)
		}
		if err := f.m.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if h := f.m.Held(); len(h) != 1 || h[0] != 1 {
		t.Fatalf("held %v, want [1]", h)
	}
	name := catalog.ConsistentName(old)
	obj, ok, err := f.m.OpenVersion(ctx, name)
	if !ok || err != nil {
		t.Fatalf("%s of held generation 1: %v, %v", name, ok, err)
	}
	var got bytes.Buffer
	_, err = obj.Body.CopyTo(ctx, &got, 0, -1)
	obj.Close()
	if err != nil || !bytes.Equal(got.Bytes(), files[p]) {
		t.Fatalf("%s of held generation 1: %d bytes, %v", name, got.Len(), err)
	}
	if x, g, ok := f.m.Expect(name); !ok || x.Digest != old.Digest || g != 3 {
		t.Fatalf("Expect(%s) = %+v, %d, %v; want generation 1's version, listed at live generation 3", name, x, g, ok)
	}
	if !f.store.Has(old.Digest) {
		t.Fatal("generation 1's blob is gone while a ring is open at it")
	}
	// A restarted mirror still holds it; when the ring moves on, Release
	// lets it go.
	f.m.Close()
	f.store.Close()
	f2 := newMirror(t, o, dir, func(c *mirror.Config) {
		c.Keep = func() []uint64 { mu.Lock(); defer mu.Unlock(); return append([]uint64(nil), keep...) }
	})
	mu.Lock()
	keep = nil
	mu.Unlock()
	if h := f2.m.Held(); len(h) != 1 {
		t.Fatalf("restored held %v, want [1]", h)
	}
	f2.m.Release()
	if h := f2.m.Held(); len(h) != 0 {
		t.Fatalf("held %v after release, want none", h)
	}
	if _, _, ok := f2.m.Version(name); ok {
		t.Fatalf("%s still listed after its generation was released", name)
	}
}
