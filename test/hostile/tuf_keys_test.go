package hostile

// The TUF spec's attacks against agents, end to end: extraneous
// dependencies (a team role signing outside its paths) and key compromise
// (below the threshold; a key revoked by a root rotation).

import (
	"context"
	"fmt"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/pkg/tufrepo"
)

// newKey makes a genuine key named name in tr's key directory (so the
// tree's ring signs with it) and returns its public half.
func newKey(t *testing.T, tr *tree, name string) *metadata.Key {
	t.Helper()
	_, pub, _, err := tufrepo.GenerateKey(tr.Keys, name)
	if err != nil {
		t.Fatal(err)
	}
	k, err := tufrepo.LoadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Extraneous dependencies: the security role (security/**) signs an entry
// for software/app.bin with other bytes and a new software/evil.bin that
// the relay serves. The agent takes software/ from rest only: it installs
// the genuine software/app.bin and never software/evil.bin.
func TestTUFExtraneousDependencies(t *testing.T) {
	t.Parallel()
	files := map[string][]byte{"security/kb-1.patch": randomBytes(201, 2000), "software/app.bin": randomBytes(202, 3000)}
	tr := publishTree(t, files)
	k := newKey(t, tr, "security")
	if _, err := tufrepo.Delegate(context.Background(), tr.Dir, tr.ring(t), tufrepo.Delegation{Role: "security", Paths: []string{"security/**"}, Keys: []*metadata.Key{k}}, tufrepo.Options{Workers: 1}); err != nil {
		t.Fatal(err)
	}
	evil := randomBytes(666, 3000)
	name := tr.latest(t, "security")
	tr.serve(t, name, forge(t, tr.meta(t, name), func(md *metadata.Metadata[metadata.TargetsType]) {
		md.Signed.Targets["software/app.bin"] = targetFile(t, "software/app.bin", evil)
		md.Signed.Targets["software/evil.bin"] = targetFile(t, "software/evil.bin", evil)
	}, roleKey(t, tr.Keys, "security")))
	tr.write(t, "software/evil.bin", evil)
	relay := startEvil(t, tr.Dir)
	out := t.TempDir()
	mustSync(t, tr.Root, out, []string{relay.URL})
	wantOut(t, out, files)
}

// bumpRest serves rest one version newer listing the object with evil
// bytes (which the tree then serves), signed by keys, in a generation
// whose snapshot and timestamp are genuine.
func (a *attack) bumpRest(t *testing.T, keys ...*signer) {
	t.Helper()
	evil := randomBytes(667, 3300)
	var v int64
	b := forge(t, a.tr.meta(t, a.tr.latest(t, "rest")), func(md *metadata.Metadata[metadata.TargetsType]) {
		md.Signed.Version++
		v = md.Signed.Version
		md.Signed.Targets[a.path] = targetFile(t, a.path, evil)
	}, keys...)
	a.tr.serve(t, fmt.Sprintf("%d.rest.json", v), b)
	a.nextGeneration(t, func(md *metadata.Metadata[metadata.SnapshotType]) { md.Signed.Meta["rest.json"].Version = v })
	a.tr.write(t, a.path, evil)
}

// rotateTargets rotates the targets keys as r says, publishes generation
// 3 (the object changed again), syncs it and returns its bytes.
func (a *attack) rotateTargets(t *testing.T, r tufrepo.Rotation) []byte {
	t.Helper()
	r.Role = "targets"
	if _, err := tufrepo.Rotate(a.tr.Dir, a.tr.ring(t), r, tufrepo.Options{Workers: 1}); err != nil {
		t.Fatal(err)
	}
	v3 := randomBytes(103, 3200)
	a.tr.write(t, a.path, v3)
	a.tr.publish(t)
	mustSync(t, a.tr.Root, a.out, []string{a.evil})
	wantOut(t, a.out, map[string][]byte{a.path: v3})
	return v3
}

// Key compromise: with targets at threshold 2 of 2 keys, rest signed by
// one of them (the attacker holds one key) is refused; after a rotation
// that revokes the first targets key, rest signed by that key is refused.
// The verified generation's file stays.
func TestTUFKeyCompromise(t *testing.T) {
	t.Parallel()
	t.Run("below the threshold", func(t *testing.T) {
		t.Parallel()
		a := newAttack(t)
		v3 := a.rotateTargets(t, tufrepo.Rotation{Add: []*metadata.Key{newKey(t, a.tr, "targets-2")}, Threshold: 2})
		var targets metadata.Metadata[metadata.TargetsType]
		if _, err := targets.FromBytes(a.tr.meta(t, a.tr.latest(t, "targets"))); err != nil {
			t.Fatal(err)
		}
		for _, r := range targets.Signed.Delegations.Roles {
			if r.Name == tufrepo.Rest && r.Threshold != 2 {
				t.Fatalf("rest has threshold %d after targets went to 2", r.Threshold)
			}
		}
		a.bumpRest(t, a.keys["targets"])
		a.refusedKeeping(t, map[string][]byte{a.path: v3}, "rest", "signature")
	})
	t.Run("revoked key", func(t *testing.T) {
		t.Parallel()
		a := newAttack(t)
		v3 := a.rotateTargets(t, tufrepo.Rotation{Add: []*metadata.Key{newKey(t, a.tr, "targets-2")}, Remove: []string{a.keys["targets"].id}})
		a.bumpRest(t, a.keys["targets"])
		a.refusedKeeping(t, map[string][]byte{a.path: v3}, "rest", "signature")
	})
}
