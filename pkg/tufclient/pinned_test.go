// Pinned generations: an older generation verified from its pin while a
// newer one is trusted.
package tufclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/pkg/tufrepo"
	"github.com/relayd/relayd/pkg/wire"
)

func TestPinnedOlderGeneration(t *testing.T) {
	g := newGatesFixture(t, true)
	cat, err := g.c.Pinned(context.Background(), g.f, g.pin(1))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, o := range cat.Objects {
		paths = append(paths, o.Path)
	}
	if cat.Generation != 1 || !slices.Equal(paths, g.gen1Paths) {
		t.Fatalf("generation %d, paths %v, want 1 %v", cat.Generation, paths, g.gen1Paths)
	}
	if o, _ := cat.Lookup("pool/b.deb"); o.Size != 2 || o.Digest.Hex() != sum("b1") {
		t.Fatalf("pool/b.deb of generation 1: %+v", o)
	}
	if len(g.f.requests()) == 0 {
		t.Fatal("nothing fetched: the test does not cover fetching")
	}
	if _, err := g.c.Pinned(context.Background(), g.f, g.pin(1)); err != nil {
		t.Fatal(err)
	}
	if reqs := g.f.requests(); len(reqs) != 0 {
		t.Fatalf("a repeat call fetched %v", reqs)
	}
	c2 := g.client()
	if _, err := c2.Pinned(context.Background(), g.f, g.pin(1)); err != nil {
		t.Fatal(err)
	}
	if reqs := g.f.requests(); len(reqs) != 0 {
		t.Fatalf("after a restart, fetched %v", reqs)
	}
	if cur, err := g.c.Pinned(context.Background(), g.f, g.pin(2)); err != nil || cur != g.c.Current().Catalog {
		t.Fatalf("pin of the newest: %v", err)
	}
	// A pinned generation is installable until its own snapshot expires.
	g.now = g.now.Add(31 * 24 * time.Hour)
	var exp *ExpiredError
	if _, err := g.client().Pinned(context.Background(), g.f, g.pin(1)); !errors.As(err, &exp) || exp.Role != metadata.SNAPSHOT {
		t.Fatalf("generation 1 after its snapshot expired: %v", err)
	}
}

func TestPinnedRefused(t *testing.T) {
	g := newGatesFixture(t, true)
	p1 := g.pin(1)
	wrongHash := p1
	wrongHash.SHA256 = g.pin(2).SHA256
	if _, err := g.c.Pinned(context.Background(), g.f, wrongHash); !errors.Is(err, ErrPinMismatch) {
		t.Fatalf("pin hash not the served snapshot's: %v", err)
	}
	bad2 := g.pin(2)
	bad2.SHA256 = p1.SHA256
	if _, err := g.c.Pinned(context.Background(), g.f, bad2); !errors.Is(err, ErrPinMismatch) {
		t.Fatalf("pin of the newest generation, other hash: %v", err)
	}
	// Generation 3 is published, the client has not updated: Update first.
	g.write("pool/d.deb", "d")
	opt := tufrepo.Options{Now: func() time.Time { return g.now }, Workers: 2, MaxDirectTargets: 1}
	if _, err := tufrepo.Publish(context.Background(), g.tree, g.ring, opt); err != nil {
		t.Fatal(err)
	}
	if _, err := g.c.Pinned(context.Background(), g.f, g.pin(3)); err == nil {
		t.Fatal("a pin newer than the newest verified accepted")
	}
	// A snapshot of version 1 signed by another tree's snapshot key, its
	// pin made for its bytes (a forged pin would not verify either): the
	// trusted root's snapshot role refuses it.
	g2 := newGatesFixture(t, true)
	forged, err := os.ReadFile(filepath.Join(g2.tree, "-", "tuf", "1.snapshot.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(g.tree, "-", "tuf", "1.snapshot.json"), forged, 0o644); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(forged)
	fp := wire.Pin{Version: 1, Length: int64(len(forged)), SHA256: hex.EncodeToString(h[:])}
	_, err = g.c.Pinned(context.Background(), g.f, fp)
	if !errors.Is(err, &metadata.ErrUnsignedMetadata{}) {
		t.Fatalf("snapshot signed by a wrong key: %v", err)
	}
}

// The metadata of a generation the held gates open a ring at (or that
// Pinned verified) outlives the three generations the store keeps.
func TestPinnedKeptAcrossGenerations(t *testing.T) {
	g := newGatesFixture(t, true)
	if _, _, err := g.c.VerifyGates(g.sign(g.ring, g.gates("p"), 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := g.c.Pinned(context.Background(), g.f, g.pin(1)); err != nil {
		t.Fatal(err)
	}
	opt := tufrepo.Options{Now: func() time.Time { return g.now }, Workers: 2, MaxDirectTargets: 1}
	for i := range 4 {
		g.write("pool/a.deb", fmt.Sprintf("a%d", i))
		if _, err := tufrepo.Publish(context.Background(), g.tree, g.ring, opt); err != nil {
			t.Fatal(err)
		}
		if _, err := g.c.Update(context.Background(), g.f); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(g.base, "client", "3.snapshot.json")); err == nil {
		t.Fatal("3.snapshot.json kept: the store did not prune")
	}
	g.f.requests()
	if _, err := g.client().Pinned(context.Background(), g.f, g.pin(1)); err != nil {
		t.Fatal(err)
	}
	if reqs := g.f.requests(); len(reqs) != 0 {
		t.Fatalf("generation 1 pruned from the store: fetched %v", reqs)
	}
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
