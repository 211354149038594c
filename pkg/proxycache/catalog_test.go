package proxycache

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/store"
)

// mapExpecter is a catalog in a map (the real one is the mirror's).
type mapExpecter struct {
	mu  sync.Mutex
	m   map[string]catalog.Object
	gen uint64 // the tests' parents ignore generations; 0 unless set
}

var _ Expecter = (*mapExpecter)(nil)

func (e *mapExpecter) Expect(key string) (catalog.Object, uint64, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	o, ok := e.m[key]
	return o, e.gen, ok
}

// set lists key with the digest d and size bytes.
func (e *mapExpecter) set(key string, d digest.Digest, size int) {
	e.mu.Lock()
	e.m[key] = catalog.Object{Path: key, Digest: d, Size: int64(size)}
	e.mu.Unlock()
}

func TestCatalogListedObjects(t *testing.T) {
	t.Parallel()
	f := newFixture(t, DefaultConfig(), 0)
	exp := &mapExpecter{m: map[string]catalog.Object{}}
	f.cache.expect = exp
	v1 := randomBytes(100000, 21)
	v2 := randomBytes(100000, 22)
	exp.set("security/p", digest.FromBytes(v1), len(v1))
	// The upstream says "never reuse without asking": a listed object is
	// immutable all the same.
	f.up.set("/security/p", &upObject{body: v1, header: http.Header{"Cache-Control": {"no-cache"}}})
	mustGet(t, f.cache, "security/p", v1, object.Miss)
	f.clock.Advance(time.Hour)
	mustGet(t, f.cache, "security/p", v1, object.Hit)
	if n := f.up.count("/security/p"); n != 1 {
		t.Fatalf("upstream asked %d times for an immutable listed object, want 1", n)
	}
	// A new generation lists other bytes: fetched once more, verified.
	f.up.set("/security/p", &upObject{body: v2})
	exp.set("security/p", digest.FromBytes(v2), len(v2))
	mustGet(t, f.cache, "security/p", v2, object.Miss)
	mustGet(t, f.cache, "security/p", v2, object.Hit)
	// Tampered bytes at the upstream: never completed, never stored.
	exp.set("security/q", digest.FromBytes(v1), len(v1))
	f.up.set("/security/q", &upObject{body: v2})
	got, _, err := get(t, f.cache, "security/q")
	if !errors.Is(err, ErrDigestMismatch) || len(got) == len(v2) {
		t.Fatalf("tampered object: %d bytes, err %v", len(got), err)
	}
	if _, err := f.store.Get("security/q"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("tampered object stored")
	}
	// A small object is verified before the status line: the handler can
	// still answer a clean 502 instead of an aborted 200. (Tampered, but
	// of the listed size: another size is refused before any byte, below.)
	small := randomBytes(1000, 23)
	exp.set("security/small", digest.FromBytes(v1), len(small))
	f.up.set("/security/small", &upObject{body: small})
	obj, err := f.cache.Get(context.Background(), "security/small")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	if obj.Verified == nil || !errors.Is(obj.Verified(context.Background()), ErrDigestMismatch) {
		t.Fatal("small tampered object: Verified does not report the mismatch")
	}
	// An upstream sending another size than the catalog lists (an error
	// page, another version) is refused before a byte is stored or sent.
	exp.set("security/r", digest.FromBytes(v1), len(v1))
	f.up.set("/security/r", &upObject{body: small})
	if _, err := f.cache.Get(context.Background(), "security/r"); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("wrong size: err = %v, want ErrDigestMismatch before the body", err)
	}
	if _, err := f.store.Get("security/r"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("object of the wrong size stored")
	}
}
