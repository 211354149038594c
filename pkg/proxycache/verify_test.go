package proxycache

import (
	"bytes"
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

// What a cache that verifies against the signed catalog (a --root proxy)
// lets through: nothing before a catalog is loaded, then what it lists,
// and what it does not list only when the operator allows it.

// verifyingFixture is a cache with an Expecter that has loaded no catalog
// yet, and an upstream holding one listed and one unlisted object.
func verifyingFixture(t *testing.T, cfg Config) (*fixture, *mapExpecter, []byte) {
	t.Helper()
	f := newFixture(t, cfg, 0)
	exp := &mapExpecter{m: map[string]catalog.Object{}}
	f.cache.expect = exp
	body := randomBytes(3000, 41)
	f.up.set("/security/listed", &upObject{body: body})
	f.up.set("/plain/unlisted", &upObject{body: unlistedBody, header: http.Header{"Cache-Control": {"max-age=3600"}}})
	f.up.set("/-/tuf/1.root.json", &upObject{body: []byte("the root file")})
	return f, exp, body
}

// unlistedBody is the upstream's object at plain/unlisted.
var unlistedBody = randomBytes(2000, 42)

// nothingStored fails the test if key is in the store.
func nothingStored(t *testing.T, f *fixture, key string) {
	t.Helper()
	if _, err := f.store.Get(key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("%s is stored (err %v)", key, err)
	}
}

func TestFailsClosedWithoutCatalog(t *testing.T) {
	t.Parallel()
	for _, allow := range []bool{false, true} {
		cfg := DefaultConfig()
		cfg.AllowUnlisted = allow
		f, exp, body := verifyingFixture(t, cfg)
		for _, key := range []string{"security/listed", "plain/unlisted"} {
			if _, err := f.cache.Get(context.Background(), key); !errors.Is(err, ErrCatalogUnavailable) {
				t.Fatalf("allow-unlisted %v, %s without a catalog: err = %v, want ErrCatalogUnavailable", allow, key, err)
			}
			if n := f.up.count("/" + key); n != 0 {
				t.Fatalf("allow-unlisted %v: the upstream was asked %d times for %s without a catalog", allow, n, key)
			}
			nothingStored(t, f, key)
		}
		// The metadata is not an object the catalog lists.
		mustGet(t, f.cache, "-/tuf/1.root.json", []byte("the root file"), object.Miss)

		// Loaded: the listed object is served, verified.
		exp.mu.Lock()
		exp.gen = 1
		exp.mu.Unlock()
		exp.set("security/listed", digest.FromBytes(body), len(body))
		mustGet(t, f.cache, "security/listed", body, object.Miss)
		mustGet(t, f.cache, "security/listed", body, object.Hit)
	}
}

func TestNotInCatalog(t *testing.T) {
	t.Parallel()
	f, exp, body := verifyingFixture(t, DefaultConfig())
	exp.gen = 3
	exp.set("security/listed", digest.FromBytes(body), len(body))
	mustGet(t, f.cache, "security/listed", body, object.Miss)
	_, err := f.cache.Get(context.Background(), "plain/unlisted")
	if !errors.Is(err, ErrNotInCatalog) {
		t.Fatalf("unlisted key: err = %v, want ErrNotInCatalog", err)
	}
	if n := f.up.count("/plain/unlisted"); n != 0 {
		t.Fatalf("the upstream was asked %d times for an unlisted key", n)
	}
	nothingStored(t, f, "plain/unlisted")

	// Bytes stored earlier for a key the catalog does not list (cached
	// by a plain proxy before --pubkey, or under allow-unlisted) are not
	// served either.
	plain := newFixture(t, DefaultConfig(), 0)
	plain.up.set("/plain/old", &upObject{body: []byte("old"), header: http.Header{"Cache-Control": {"max-age=3600"}}})
	mustGet(t, plain.cache, "plain/old", []byte("old"), object.Miss)
	plain.cache.expect = exp
	if _, err := plain.cache.Get(context.Background(), "plain/old"); !errors.Is(err, ErrNotInCatalog) {
		t.Fatalf("stored unlisted key: err = %v, want ErrNotInCatalog", err)
	}
}

func TestAllowUnlistedIsAPlainCache(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.AllowUnlisted = true
	f, exp, body := verifyingFixture(t, cfg)
	exp.gen = 1
	exp.set("security/listed", digest.FromBytes(body), len(body))
	unlisted := unlistedBody
	// RFC 9111 freshness: fresh for an hour, then revalidated.
	mustGet(t, f.cache, "plain/unlisted", unlisted, object.Miss)
	mustGet(t, f.cache, "plain/unlisted", unlisted, object.Hit)
	f.clock.Advance(2 * time.Hour)
	mustGet(t, f.cache, "plain/unlisted", unlisted, object.Miss)
	if n := f.up.count("/plain/unlisted"); n != 2 {
		t.Fatalf("upstream asked %d times, want 2 (fill, then after expiry)", n)
	}
	// Only listed objects hold their ranges until verified.
	for key, want := range map[string]bool{"plain/other": false, "security/other": true} {
		b := randomBytes(5000, 43)
		f.up.set("/"+key, &upObject{body: b})
		if want {
			exp.set(key, digest.FromBytes(b), len(b))
		}
		obj, err := f.cache.Get(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		if obj.VerifiedRanges != want {
			t.Errorf("%s: VerifiedRanges = %v, want %v", key, obj.VerifiedRanges, want)
		}
		obj.Close()
	}
}

// TestRangeOnListedMissWaitsForVerification: a part of a listed object on
// a miss is released only once the whole object arrived and verified
// (the content handler waits on Verified when VerifiedRanges is set); a
// tampered one never verifies and is not stored.
func TestRangeOnListedMissWaitsForVerification(t *testing.T) {
	t.Parallel()
	f := newFixture(t, DefaultConfig(), 0)
	exp := &mapExpecter{m: map[string]catalog.Object{}, gen: 1}
	f.cache.expect = exp
	good := randomBytes(1<<20, 44)
	tampered := bytes.Clone(good)
	tampered[len(tampered)/2] ^= 1 // same size: only the digest tells

	for _, tc := range []struct {
		name    string
		key     string
		body    []byte
		wantErr error
	}{
		{"good", "security/good", good, nil},
		{"tampered", "security/tampered", tampered, ErrDigestMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exp.set(tc.key, digest.FromBytes(good), len(good))
			gate := make(chan struct{})
			open := sync.OnceFunc(func() { close(gate) })
			t.Cleanup(open) // a failed check must not leave the upstream hanging
			f.up.set("/"+tc.key, &upObject{body: tc.body, gate: gate, gateAt: 512 << 10})
			obj, err := f.cache.Get(context.Background(), tc.key)
			if err != nil {
				t.Fatal(err)
			}
			defer obj.Close()
			if !obj.VerifiedRanges || obj.Verified == nil {
				t.Fatalf("a listed miss: VerifiedRanges %v, Verified set %v; want both", obj.VerifiedRanges, obj.Verified != nil)
			}
			verified := make(chan error, 1)
			go func() { verified <- obj.Verified(context.Background()) }()
			// The first 512 KiB, and so bytes 0-99, are in; the rest is
			// held at the upstream: nothing may count as verified yet.
			fl := f.fillOf(tc.key)
			eventually(t, 10*time.Second, func() bool { return fl.writtenSoFar() >= 512<<10 })
			select {
			case err := <-verified:
				t.Fatalf("Verified returned %v with half of the object in", err)
			default:
			}
			open()
			if err := <-verified; !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verified = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				var buf bytes.Buffer
				if _, err := obj.Body.CopyTo(context.Background(), &buf, 0, 100); err == nil {
					t.Fatal("the range of a tampered object copies without error")
				}
				eventually(t, 10*time.Second, func() bool { return f.fillOf(tc.key) == nil })
				nothingStored(t, f, tc.key)
				return
			}
			var buf bytes.Buffer
			if _, err := obj.Body.CopyTo(context.Background(), &buf, 0, 100); err != nil || !bytes.Equal(buf.Bytes(), good[:100]) {
				t.Fatalf("range 0-99 after verification: %d bytes, err %v", buf.Len(), err)
			}
		})
	}
}

// fillOf returns the fill of key in flight, nil if none.
func (f *fixture) fillOf(key string) *fill {
	f.cache.mu.Lock()
	defer f.cache.mu.Unlock()
	return f.cache.fills[key]
}

func (f *fill) writtenSoFar() int64 {
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.written
}
