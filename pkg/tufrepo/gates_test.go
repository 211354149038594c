package tufrepo

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/pkg/wire"
)

// withRollout adds a rollout key to the fixture's roles and ring.
func (f *fixture) withRollout() {
	f.t.Helper()
	f.roles[wire.RolloutRole] = RoleKeys{Keys: []*metadata.Key{f.keygen(wire.RolloutRole)}, Threshold: 1}
	if _, err := f.ring.AddFile(filepath.Join(f.keys, wire.RolloutRole+".key")); err != nil {
		f.t.Fatal(err)
	}
}

// published is a fixture with pool/a.deb published at generation 1, its
// root with a rollout role when rollout.
func published(t *testing.T, rollout bool) *fixture {
	t.Helper()
	f := newFixture(t)
	if rollout {
		f.withRollout()
	}
	f.init()
	f.write("pool/a.deb", "a")
	f.publish()
	return f
}

func (f *fixture) newestRoot() *rootMeta {
	f.t.Helper()
	s, err := load(f.tree)
	if err != nil {
		f.t.Fatal(err)
	}
	return s.root
}

func (f *fixture) gates(open uint64) wire.Gates {
	f.t.Helper()
	p, err := PinOf(f.tree, int64(open))
	if err != nil {
		f.t.Fatal(err)
	}
	return wire.Gates{Plan: "fleet", Newest: p, Rings: []wire.Ring{{Name: "all", Groups: []string{"*"}, Open: p}}}
}

// A root with a rollout role (init, or added by a rotation) is still a
// root go-tuf's own updater takes, and it finds the targets.
func TestRolloutRoleGoTUFAccepts(t *testing.T) {
	f := published(t, true)
	if r := f.newestRoot().Signed.Roles[wire.RolloutRole]; r == nil || len(r.KeyIDs) != 1 || r.Threshold != 1 {
		t.Fatalf("rollout role %+v", r)
	}
	f.verifyTarget(f.client(), "pool/a.deb", "a")

	g := published(t, false)
	k := g.keygen(wire.RolloutRole)
	if _, err := Rotate(g.tree, g.ring, Rotation{Role: wire.RolloutRole, Add: []*metadata.Key{k}}, g.opt); err != nil {
		t.Fatal(err)
	}
	if r := g.newestRoot().Signed.Roles[wire.RolloutRole]; r == nil || len(r.KeyIDs) != 1 {
		t.Fatalf("rotate --rollout-key: role %+v", r)
	}
	g.verifyTarget(g.client(), "pool/a.deb", "a") // walks 1.root.json → 2.root.json
	id, _ := k.ID()
	if _, err := Rotate(g.tree, g.ring, Rotation{Role: wire.RolloutRole, Remove: []string{id}}, g.opt); err != nil {
		t.Fatal(err)
	}
	if r := g.newestRoot().Signed.Roles[wire.RolloutRole]; r != nil {
		t.Fatalf("last rollout key removed, role still %+v", r)
	}
	g.verifyTarget(g.client(), "pool/a.deb", "a")
}

func TestSignGates(t *testing.T) {
	f := published(t, true)
	raw, err := SignGates(f.tree, f.ring, f.gates(1), time.Hour, f.now)
	if err != nil {
		t.Fatal(err)
	}
	md, err := metadata.Targets().FromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.newestRoot().VerifyDelegate(wire.RolloutRole, md); err != nil {
		t.Fatalf("go-tuf does not verify the gates: %v", err)
	}
	if md.Signed.Version != 1 || !md.Signed.Expires.Equal(f.now.Add(time.Hour)) || len(md.Signed.Targets) != 0 {
		t.Fatalf("version %d expires %v targets %d", md.Signed.Version, md.Signed.Expires, len(md.Signed.Targets))
	}
	// What cjson and go-tuf's generic decoding must agree on: escapes,
	// non-ASCII, nanoseconds, large numbers.
	odd := f.gates(1)
	odd.Halted, odd.Reason = true, "ring \"canary\": <3 of 10> & \\ é\u2028\t"
	odd.Rings[0].Since = f.now.Add(123456789 * time.Nanosecond)
	odd.Rings[0].Groups = []string{"branch-[a-c]*", "ü"}
	if _, err := SignGates(f.tree, f.ring, odd, 0, f.now); err != nil {
		t.Fatal(err)
	}
	g, v, exp, ok, err := HeldGates(f.tree)
	if err != nil || g.Reason != strings.ReplaceAll(odd.Reason, "\t", " ") || !g.Rings[0].Since.Equal(odd.Rings[0].Since) || g.Rings[0].Groups[1] != "ü" {
		t.Fatalf("odd gates read back: %+v %v", g, err)
	}
	if _, err := SignGates(f.tree, f.ring, f.gates(1), 0, f.now); err != nil {
		t.Fatal(err)
	}
	g, v, exp, ok, err = HeldGates(f.tree)
	if err != nil || !ok || v != 3 || !exp.Equal(f.now.Add(DefaultGatesExpiry)) || g.Rings[0].Open.Version != 1 {
		t.Fatalf("held: %+v %d %v %v %v", g, v, exp, ok, err)
	}
	ctl := f.gates(1)
	ctl.Rings[0].Name = "can\nary"
	if _, err := SignGates(f.tree, f.ring, ctl, 0, f.now); err == nil || !strings.Contains(err.Error(), "control character") {
		t.Fatalf("a ring name with a newline: %v", err)
	}
	bad := f.gates(1)
	bad.Rings = append(bad.Rings, wire.Ring{Name: "later", Open: bad.Newest})
	bad.Rings[0].Open = wire.Pin{}
	if _, err := SignGates(f.tree, f.ring, bad, 0, f.now); !errors.Is(err, wire.ErrBadGates) {
		t.Fatalf("a later ring ahead of an earlier one: %v", err)
	}
	if _, err := SignGates(f.tree, f.ringOf("root", "targets", "snapshot", "timestamp"), f.gates(1), 0, f.now); err == nil {
		t.Fatal("signed without the rollout key")
	}
	if _, _, _, _, err := HeldGates(f.tree); err != nil {
		t.Fatalf("a refused signing changed the held gates: %v", err)
	}
}

func TestSignGatesWithoutRolloutRole(t *testing.T) {
	f := published(t, false)
	f.withRollout() // the key, not in the root
	if _, err := SignGates(f.tree, f.ring, f.gates(1), 0, f.now); err == nil {
		t.Fatal("signed gates for a root without a rollout role")
	}
}

func TestPinOf(t *testing.T) {
	f := published(t, false)
	f.write("pool/b.deb", "b")
	f.publish()
	for gen := int64(1); gen <= 2; gen++ {
		b, err := os.ReadFile(filepath.Join(f.tree, "-", "tuf", fmt.Sprintf("%d.snapshot.json", gen)))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		p, err := PinOf(f.tree, gen)
		if err != nil || p.Version != uint64(gen) || p.Length != int64(len(b)) || p.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("generation %d: %+v %v", gen, p, err)
		}
	}
	if _, err := PinOf(f.tree, 3); err == nil {
		t.Fatal("pin of an unpublished generation")
	}
	// A snapshot the snapshot role did not sign is no generation.
	other := newFixture(t)
	other.init()
	other.write("x", "x")
	other.publish()
	forged, err := os.ReadFile(filepath.Join(other.tree, "-", "tuf", "1.snapshot.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.tree, "-", "tuf", "1.snapshot.json"), forged, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := PinOf(f.tree, 1); err == nil {
		t.Fatal("pin of a snapshot another key signed")
	}
}

// The metadata of a generation some ring is open at outlives the three
// generations prune keeps.
func TestPruneKeepsGatedGeneration(t *testing.T) {
	f := published(t, true)
	if _, err := SignGates(f.tree, f.ring, f.gates(1), 0, f.now); err != nil {
		t.Fatal(err)
	}
	f.write("pool/a.deb", "a2")
	f.publish()
	g := f.gates(2) // every ring open at 2 but one at 1
	p1, err := PinOf(f.tree, 1)
	if err != nil {
		t.Fatal(err)
	}
	g.Rings = append(g.Rings, wire.Ring{Name: "broad", Open: p1})
	if _, err := SignGates(f.tree, f.ring, g, 0, f.now); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		f.write("pool/a.deb", fmt.Sprintf("a%d", i+3))
		f.publish()
	}
	files := f.files()
	for _, name := range []string{"1.snapshot.json", "2.snapshot.json", "6.snapshot.json"} {
		if _, ok := files[name]; !ok {
			t.Errorf("%s pruned", name)
		}
	}
	if _, ok := files["3.snapshot.json"]; ok {
		t.Error("3.snapshot.json kept: prune did not run")
	}
	if _, err := PinOf(f.tree, 1); err != nil {
		t.Fatal(err)
	}
}
