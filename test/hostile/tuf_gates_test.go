package hostile

// Issue 15's gates from the wire side: a relay that forges, tampers with,
// replays or serves expired rollout gates (rollout.json), or serves
// another snapshot than a gate's pin names, is refused by a child's
// tufclient reading it over HTTP, while the genuine gates a real relayd
// origin serves are taken.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/pkg/hierarchy"
	"github.com/relayd/relayd/pkg/tufclient"
	"github.com/relayd/relayd/pkg/tufrepo"
	"github.com/relayd/relayd/pkg/wire"
)

// metaFetcher reads /-/tuf/ of one relay through pkg/hierarchy's client,
// as relays and agents do (bounded, failover, spooling).
type metaFetcher struct {
	base string
	*hierarchy.Metadata
}

func newMetaFetcher(t *testing.T, base string) metaFetcher {
	t.Helper()
	hc := hierarchy.DefaultConfig()
	hc.Upstreams = []string{base}
	cl, err := hierarchy.New(hc, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	return metaFetcher{base: base, Metadata: cl.Metadata(t.TempDir(), nil)}
}

// gatesAttack is a tree whose root 2 added a rollout role, at generation
// 2, served genuinely by a relayd origin and, from a copy the test
// rewrites, by evilrelay; and a client that trusts root 1 and verified
// generation 2 through evilrelay.
type gatesAttack struct {
	tr         *tree
	ring       *tufrepo.KeyRing
	now        time.Time
	origin     metaFetcher
	evil       metaFetcher
	evilDir    string
	state      string
	c          *tufclient.Client
	v1         []byte
	pin1, pin2 wire.Pin
}

func newGatesAttack(t *testing.T) *gatesAttack {
	t.Helper()
	a := &gatesAttack{now: time.Now().UTC().Truncate(time.Second), v1: randomBytes(151, 2000), state: t.TempDir()}
	a.tr = publishTree(t, map[string][]byte{"software/app.bin": a.v1})
	_, pub, _, err := tufrepo.GenerateKey(a.tr.Keys, wire.RolloutRole)
	if err != nil {
		t.Fatal(err)
	}
	k, err := tufrepo.LoadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	a.ring = a.tr.ring(t)
	if _, err := tufrepo.Rotate(a.tr.Dir, a.ring, tufrepo.Rotation{Role: wire.RolloutRole, Add: []*metadata.Key{k}}, tufrepo.Options{}); err != nil {
		t.Fatal(err)
	}
	a.tr.write(t, "software/app.bin", randomBytes(152, 2100))
	if g := a.tr.publish(t); g != 2 {
		t.Fatalf("generation %d, want 2", g)
	}
	for gen, p := range map[int64]*wire.Pin{1: &a.pin1, 2: &a.pin2} {
		if *p, err = tufrepo.PinOf(a.tr.Dir, gen); err != nil {
			t.Fatal(err)
		}
	}
	a.sign(t, a.gates(false), 0)
	a.evilDir = filepath.Join(t.TempDir(), "evil")
	if err := os.CopyFS(a.evilDir, os.DirFS(a.tr.Dir)); err != nil {
		t.Fatal(err)
	}
	a.origin = newMetaFetcher(t, startRelayd(t, "--mode", "origin", "--root", a.tr.Dir).URL)
	a.evil = newMetaFetcher(t, startEvil(t, a.evilDir).URL)
	a.c = a.client(t)
	st, err := a.c.Update(context.Background(), a.evil)
	if err != nil || st.Catalog.Generation != 2 || !a.c.HasRolloutRole() {
		t.Fatalf("update through evilrelay: %v (rollout role %v)", err, a.c.HasRolloutRole())
	}
	return a
}

// client is a new agent's client on the attack's state directory (a
// restart keeps what it trusted).
func (a *gatesAttack) client(t *testing.T) *tufclient.Client {
	t.Helper()
	root, err := os.ReadFile(a.tr.Root)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tufclient.New(root, tufclient.Options{Dir: a.state, Now: func() time.Time { return a.now }})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// gates: canary open at generation 2, broad (every other group) at 1.
func (a *gatesAttack) gates(halted bool) wire.Gates {
	g := wire.Gates{Plan: "fleet", Newest: a.pin2, Rings: []wire.Ring{
		{Name: "canary", Groups: []string{"branch-a"}, Open: a.pin2},
		{Name: "broad", Groups: []string{"*"}, Open: a.pin1},
	}}
	if halted {
		g.Halted, g.Reason = true, "ring canary: 3 of 10 agents failed"
	}
	return g
}

// sign has the origin sign g (its rollout key) into the genuine tree.
func (a *gatesAttack) sign(t *testing.T, g wire.Gates, expiry time.Duration) []byte {
	t.Helper()
	raw, err := tufrepo.SignGates(a.tr.Dir, a.ring, g, expiry, a.now)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// evilServes makes evilrelay serve b as name.
func (a *gatesAttack) evilServes(t *testing.T, name string, b []byte) {
	t.Helper()
	(&tree{Dir: a.evilDir}).serve(t, name, b)
}

// verifyFrom fetches rollout.json from f and verifies it with c.
func verifyFrom(t *testing.T, c *tufclient.Client, f metaFetcher) (*wire.Gates, tufclient.GatesInfo, error) {
	t.Helper()
	raw, err := f.FetchMeta(context.Background(), wire.GatesName, wire.MaxGatesSize)
	if err != nil {
		t.Fatalf("fetch %s from %s: %v", wire.GatesName, f.base, err)
	}
	return c.VerifyGates(raw)
}

// A relay opening its own ring, or passing on gates signed by a key of
// another role, or tampered with, is refused; the held gates stay.
func TestTUFGatesForged(t *testing.T) {
	t.Parallel()
	a := newGatesAttack(t)
	genuine, info, err := verifyFrom(t, a.c, a.origin)
	if err != nil || genuine.Rings[1].Open.Version != 1 {
		t.Fatalf("the origin's gates: %v %+v", err, genuine)
	}
	openBroad := func(md *metadata.Metadata[metadata.TargetsType]) {
		rings := md.Signed.UnrecognizedFields[wire.GatesField].(map[string]any)["rings"].([]any)
		rings[1].(map[string]any)["open"] = rings[0].(map[string]any)["open"]
		md.Signed.Version++
	}
	// The genuine signatures kept over edited gates.
	md, err := metadata.Targets().FromBytes(info.Raw)
	if err != nil {
		t.Fatal(err)
	}
	openBroad(md)
	tampered, err := md.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		raw  []byte
	}{
		{"signed by an attacker", forge(t, info.Raw, openBroad, attackerKey(t))},
		{"signed by the timestamp key", forge(t, info.Raw, openBroad, roleKey(t, a.tr.Keys, "timestamp"))},
		{"genuine signature, ring opened", tampered},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a.evilServes(t, wire.GatesName, tc.raw)
			_, _, err := verifyFrom(t, a.c, a.evil)
			if !errors.Is(err, tufclient.ErrGatesForged) {
				t.Fatalf("got %v, want %v", err, tufclient.ErrGatesForged)
			}
			if g, _, ok := a.c.Gates(); !ok || g.Rings[1].Open.Version != 1 {
				t.Fatalf("held gates changed: %+v", g)
			}
		})
	}
}

// A relay replaying the gates from before a halt (the same signature, an
// older version), or serving expired gates, is refused, also by the
// agent's next process.
func TestTUFGatesReplayedExpired(t *testing.T) {
	t.Parallel()
	a := newGatesAttack(t)
	if _, _, err := verifyFrom(t, a.c, a.origin); err != nil {
		t.Fatal(err)
	}
	before := a.tr.meta(t, wire.GatesName)
	a.sign(t, a.gates(true), 0)
	g, info, err := verifyFrom(t, a.c, a.origin)
	if err != nil || !g.Halted || info.Version != 2 {
		t.Fatalf("the halt: %v %+v", err, g)
	}
	a.evilServes(t, wire.GatesName, before)
	if _, _, err := verifyFrom(t, a.c, a.evil); !errors.Is(err, tufclient.ErrGatesReplayed) {
		t.Fatalf("replayed: got %v", err)
	}
	if _, _, err := verifyFrom(t, a.client(t), a.evil); !errors.Is(err, tufclient.ErrGatesReplayed) {
		t.Fatalf("replayed to the next process: got %v", err)
	}
	// Version 3, signed to expire in a minute; the agent's clock is past it.
	a.evilServes(t, wire.GatesName, a.sign(t, a.gates(false), time.Minute))
	a.now = a.now.Add(2 * time.Minute)
	if _, _, err := verifyFrom(t, a.c, a.evil); !errors.Is(err, tufclient.ErrExpired) {
		t.Fatalf("expired: got %v", err)
	}
	if g, _, ok := a.c.Gates(); !ok || !g.Halted {
		t.Fatalf("held gates: %+v %v", g, ok)
	}
}

// A relay serving another snapshot under the name a gate's pin names is
// refused; the origin's is generation 1 exactly.
func TestTUFGatesPinnedSnapshot(t *testing.T) {
	t.Parallel()
	a := newGatesAttack(t)
	g, _, err := verifyFrom(t, a.c, a.origin)
	if err != nil {
		t.Fatal(err)
	}
	pin := g.Rings[g.RingOf("branch-z")].Open
	a.evilServes(t, "1.snapshot.json", a.tr.meta(t, "2.snapshot.json"))
	if _, err := a.c.Pinned(context.Background(), a.evil, pin); !errors.Is(err, tufclient.ErrPinMismatch) {
		t.Fatalf("generation 2's snapshot served as 1: %v", err)
	}
	cat, err := a.c.Pinned(context.Background(), a.origin, pin)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := cat.Lookup("software/app.bin")
	if cat.Generation != 1 || len(cat.Objects) != 1 || !ok || o.Digest.Hex() != sum(a.v1) {
		t.Fatalf("generation %d, %d objects, app.bin %+v", cat.Generation, len(cat.Objects), o)
	}
}
