// The rollout role's gates and pinned generations against what pkg/tufrepo
// signs, served over HTTP on 127.0.0.1.
package tufclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/internal/tuftest"
	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/tufrepo"
	"github.com/relayd/relayd/pkg/wire"
)

// gatesFixture is a tree whose root has a rollout role, published twice
// (generation 1: a, b; generation 2: b changed, c added), served on
// 127.0.0.1, and a client that trusts generation 2.
type gatesFixture struct {
	t         *testing.T
	base      string
	tree      string
	ring      *tufrepo.KeyRing
	now       time.Time
	root      []byte
	f         *httpFetcher
	c         *Client
	gen1Paths []string
}

func newGatesFixture(t *testing.T, rollout bool) *gatesFixture {
	t.Helper()
	base := t.TempDir()
	g := &gatesFixture{t: t, base: base, tree: filepath.Join(base, "tree"), now: t0}
	opt := tufrepo.Options{Now: func() time.Time { return g.now }, Workers: 2, MaxDirectTargets: 1}
	roles, ring := tuftest.Keys(t, filepath.Join(base, "keys"))
	if rollout {
		tuftest.Rollout(t, filepath.Join(base, "keys"), roles, ring)
	}
	g.ring = ring
	g.write("pool/a.deb", "a")
	g.write("pool/b.deb", "b1")
	if res, err := tufrepo.Init(g.tree, ring, roles, opt); err != nil || len(res.Needs) > 0 {
		t.Fatalf("init: %v %+v", err, res)
	}
	if _, err := tufrepo.Publish(context.Background(), g.tree, ring, opt); err != nil {
		t.Fatal(err)
	}
	g.gen1Paths = []string{"pool/a.deb", "pool/b.deb"}
	g.write("pool/b.deb", "b2")
	g.write("pool/c.deb", "c")
	if _, err := tufrepo.Publish(context.Background(), g.tree, ring, opt); err != nil {
		t.Fatal(err)
	}
	var err error
	if g.root, err = os.ReadFile(filepath.Join(g.tree, "-", "tuf", "1.root.json")); err != nil {
		t.Fatal(err)
	}
	g.f = &httpFetcher{base: serveTree(t, g.tree)}
	g.c = g.client()
	st, err := g.c.Update(context.Background(), g.f)
	if err != nil || st.Catalog.Generation != 2 {
		t.Fatalf("update: %v", err)
	}
	g.f.requests()
	return g
}

func (g *gatesFixture) write(p, body string) {
	g.t.Helper()
	full := filepath.Join(g.tree, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		g.t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
		g.t.Fatal(err)
	}
}

// newKey makes a key pair keys/name.key, .pub and returns the public key.
func (g *gatesFixture) newKey(name string) *metadata.Key {
	g.t.Helper()
	_, pub, _, err := tufrepo.GenerateKey(filepath.Join(g.base, "keys"), name)
	if err != nil {
		g.t.Fatal(err)
	}
	k, err := tufrepo.LoadPublicKey(pub)
	if err != nil {
		g.t.Fatal(err)
	}
	return k
}

// client is a new client on the fixture's Dir (a restart).
func (g *gatesFixture) client() *Client {
	g.t.Helper()
	c, err := New(g.root, Options{Dir: filepath.Join(g.base, "client"), Now: func() time.Time { return g.now }})
	if err != nil {
		g.t.Fatal(err)
	}
	return c
}

func (g *gatesFixture) pin(gen int64) wire.Pin {
	g.t.Helper()
	p, err := tufrepo.PinOf(g.tree, gen)
	if err != nil {
		g.t.Fatal(err)
	}
	return p
}

// gates are valid gates: ring canary open at generation 2, broad at 1.
func (g *gatesFixture) gates(plan string) wire.Gates {
	return wire.Gates{Plan: plan, Newest: g.pin(2), Rings: []wire.Ring{
		{Name: "canary", Groups: []string{"branch-a"}, Open: g.pin(2), Since: g.now},
		{Name: "broad", Groups: []string{"*"}, Open: g.pin(1)},
	}}
}

// sign signs gates with ring into the tree and returns the file.
func (g *gatesFixture) sign(ring *tufrepo.KeyRing, gates wire.Gates, expiry time.Duration) []byte {
	g.t.Helper()
	raw, err := tufrepo.SignGates(g.tree, ring, gates, expiry, g.now)
	if err != nil {
		g.t.Fatal(err)
	}
	return raw
}

func TestVerifyGatesHeldAcrossRestart(t *testing.T) {
	g := newGatesFixture(t, true)
	if !g.c.HasRolloutRole() {
		t.Fatal("HasRolloutRole false for a root with a rollout role")
	}
	if _, _, ok := g.c.Gates(); ok {
		t.Fatal("gates held before any was verified")
	}
	raw := g.sign(g.ring, g.gates("fleet"), 0)
	got, info, err := g.c.VerifyGates(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.Plan != "fleet" || got.Rings[1].Open.Version != 1 || info.Version != 1 || !bytes.Equal(info.Raw, raw) ||
		!info.Expires.Equal(g.now.Add(tufrepo.DefaultGatesExpiry)) {
		t.Fatalf("gates %+v info %+v", got, info)
	}
	if _, _, err := g.c.VerifyGates(raw); err != nil {
		t.Fatalf("the held file again: %v", err)
	}
	c2 := g.client()
	held, info2, ok := c2.Gates()
	if !ok || held.Plan != "fleet" || info2.Version != 1 {
		t.Fatalf("after a restart: %+v %+v %v", held, info2, ok)
	}
	g.now = g.now.Add(25 * time.Hour)
	if _, _, ok := c2.Gates(); ok {
		t.Fatal("expired gates reported valid")
	}
}

func TestVerifyGatesRefused(t *testing.T) {
	g := newGatesFixture(t, true)
	v1 := g.sign(g.ring, g.gates("one"), 0)
	v2 := g.sign(g.ring, g.gates("two"), 0)
	// Same version 2, other bytes: the origin's file removed and signed again.
	if err := os.Remove(filepath.Join(g.tree, "-", "tuf", wire.GatesName)); err != nil {
		t.Fatal(err)
	}
	g.sign(g.ring, g.gates("x"), 0)
	other := g.sign(g.ring, g.gates("three"), 0)
	if v := versionOf(t, other); v != 2 {
		t.Fatalf("re-signed version %d, want 2", v)
	}
	// Another rollout key: a second tree's.
	g2 := newGatesFixture(t, true)
	foreign := g2.sign(g2.ring, g.gates("foreign"), 0)
	// Signed by a key the root lists for another role (targets).
	byTargets := g.sign(g.ring, g.gates("t"), 0)
	byTargets = resign(t, byTargets, filepath.Join(g.base, "keys", "targets.key"))
	expired := g.sign(g.ring, g.gates("late"), time.Minute)

	if _, _, err := g.c.VerifyGates(v2); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		raw  []byte
		want error
	}{
		{"other key", foreign, ErrGatesForged},
		{"key of another role", byTargets, ErrGatesForged},
		{"bit flipped", flip(t, v2, `"plan":"two"`, `"plan":"twp"`), ErrGatesForged},
		{"signatures removed", flip(t, v2, `"signatures":[{`, `"signatures":[],"x":[{`), ErrGatesForged},
		{"not JSON", []byte("<html>"), ErrGatesForged},
		{"too large", append(bytes.Repeat([]byte(" "), wire.MaxGatesSize), v2...), ErrGatesForged},
		{"replayed older version", v1, ErrGatesReplayed},
		{"same version, other bytes", other, ErrGatesReplayed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := g.c.VerifyGates(tc.raw)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if _, info, _ := g.c.Gates(); info.Version != 2 || !bytes.Equal(info.Raw, v2) {
				t.Fatalf("held gates changed to version %d", info.Version)
			}
		})
	}
	// The replay floor survives a restart.
	if _, _, err := g.client().VerifyGates(v1); !errors.Is(err, ErrGatesReplayed) {
		t.Fatalf("after a restart, version 1: %v", err)
	}
	g.now = g.now.Add(2 * time.Minute)
	if _, _, err := g.c.VerifyGates(expired); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
}

func TestVerifyGatesUnderThreshold(t *testing.T) {
	g := newGatesFixture(t, true)
	keys := filepath.Join(g.base, "keys")
	k := g.newKey("rollout2")
	opt := tufrepo.Options{Now: func() time.Time { return g.now }}
	if _, err := tufrepo.Rotate(g.tree, g.ring, tufrepo.Rotation{Role: wire.RolloutRole, Add: []*metadata.Key{k}, Threshold: 2}, opt); err != nil {
		t.Fatal(err)
	}
	if _, err := tufrepo.SignGates(g.tree, g.ring, g.gates("p"), 0, g.now); err == nil {
		t.Fatal("SignGates signed under the threshold")
	}
	both, err := tufrepo.LoadKeyRing(nil, []string{keys})
	if err != nil {
		t.Fatal(err)
	}
	raw := g.sign(both, g.gates("p"), 0)
	// A client that trusts root 2 (a client of root 1 learns it with the
	// next generation).
	root2, err := os.ReadFile(filepath.Join(g.tree, "-", "tuf", "2.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(root2, Options{Now: func() time.Time { return g.now }})
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Signatures []json.RawMessage `json:"signatures"`
		Signed     json.RawMessage   `json:"signed"`
	}
	if err := json.Unmarshal(raw, &env); err != nil || len(env.Signatures) != 2 {
		t.Fatalf("%v: %d signatures", err, len(env.Signatures))
	}
	env.Signatures = env.Signatures[:1]
	one, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.VerifyGates(one); !errors.Is(err, ErrGatesForged) {
		t.Fatalf("one signature of two: %v", err)
	}
	if _, _, err := c.VerifyGates(raw); err != nil {
		t.Fatalf("both signatures: %v", err)
	}
}

func TestVerifyGatesNoRolloutRole(t *testing.T) {
	g := newGatesFixture(t, false)
	if g.c.HasRolloutRole() {
		t.Fatal("HasRolloutRole true without the role")
	}
	if _, err := tufrepo.SignGates(g.tree, g.ring, g.gates("p"), 0, g.now); err == nil {
		t.Fatal("SignGates without a rollout role")
	}
	g2 := newGatesFixture(t, true)
	raw := g2.sign(g2.ring, g2.gates("p"), 0)
	if _, _, err := g.c.VerifyGates(raw); !errors.Is(err, ErrNoRolloutRole) {
		t.Fatalf("got %v", err)
	}
}

func versionOf(t *testing.T, raw []byte) int64 {
	t.Helper()
	md, err := metadata.Targets().FromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	return md.Signed.Version
}

// flip replaces old (which must occur) with repl in raw.
func flip(t *testing.T, raw []byte, old, repl string) []byte {
	t.Helper()
	if !bytes.Contains(raw, []byte(old)) {
		t.Fatalf("%q not in %s", old, raw)
	}
	return bytes.Replace(raw, []byte(old), []byte(repl), 1)
}

// resign replaces raw's signatures with one of the key file keyPath.
func resign(t *testing.T, raw []byte, keyPath string) []byte {
	t.Helper()
	md, err := metadata.Targets().FromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	md.ClearSignatures()
	priv, err := catalog.LoadPrivateKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signature.LoadED25519Signer(priv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := md.Sign(signer); err != nil {
		t.Fatal(err)
	}
	out, err := md.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// After the rollout keys rotate, the gates held under the old key are no
// replay floor for the new key's (which start again at version 1), and
// the old key's gates are refused.
func TestVerifyGatesAfterRotation(t *testing.T) {
	g := newGatesFixture(t, true)
	g.sign(g.ring, g.gates("old"), 0)
	old := g.sign(g.ring, g.gates("old"), 0)
	if _, _, err := g.c.VerifyGates(old); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(g.base, "keys")
	k := g.newKey("rollout-new")
	oldKey, err := tufrepo.LoadPublicKey(filepath.Join(keys, "rollout.pub"))
	if err != nil {
		t.Fatal(err)
	}
	oldID, err := oldKey.ID()
	if err != nil {
		t.Fatal(err)
	}
	opt := tufrepo.Options{Now: func() time.Time { return g.now }, Workers: 2, MaxDirectTargets: 1}
	if _, err := tufrepo.Rotate(g.tree, g.ring, tufrepo.Rotation{Role: wire.RolloutRole, Add: []*metadata.Key{k}, Remove: []string{oldID}}, opt); err != nil {
		t.Fatal(err)
	}
	g.write("pool/d.deb", "d") // the next generation brings root 2
	if _, err := tufrepo.Publish(context.Background(), g.tree, g.ring, opt); err != nil {
		t.Fatal(err)
	}
	if st, err := g.c.Update(context.Background(), g.f); err != nil || st.RootVersion != 2 {
		t.Fatalf("update: %v", err)
	}
	if err := os.Remove(filepath.Join(g.tree, "-", "tuf", wire.GatesName)); err != nil {
		t.Fatal(err)
	}
	ring, err := tufrepo.LoadKeyRing([]string{filepath.Join(keys, "rollout-new.key")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fresh := g.sign(ring, g.gates("new"), 0)
	if v := versionOf(t, fresh); v != 1 {
		t.Fatalf("new key's first gates: version %d", v)
	}
	if _, _, err := g.c.VerifyGates(old); !errors.Is(err, ErrGatesForged) {
		t.Fatalf("the rotated-out key's gates: %v", err)
	}
	if got, _, err := g.c.VerifyGates(fresh); err != nil || got.Plan != "new" {
		t.Fatalf("the new key's gates after a rotation: %v", err)
	}
}
