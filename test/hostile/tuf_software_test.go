package hostile

// The TUF spec's attacks against agents, end to end (issue 13, item 6):
// arbitrary software and rollback. A real `relayd agent sync` process
// syncs from evilrelay serving a genuine repository that the test then
// forges; every attack fails closed: the output directory keeps what was
// verified, and the agent's error names the cause.

import (
	"fmt"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// attack is a genuine generation 1 synced by an agent into out, and
// generation 2 (the object changed) published but not yet synced.
type attack struct {
	tr    *tree
	evil  string // evilrelay's URL: serves tr.Dir as it is now
	out   string
	path  string // the object
	v1    []byte
	v2    []byte
	gen1  map[string][]byte // generation 1's metadata, by served name
	keys  map[string]*signer
	state string // the agent's trusted metadata
}

func newAttack(t *testing.T) *attack {
	t.Helper()
	a := &attack{path: "software/app.bin", v1: randomBytes(101, 3000), v2: randomBytes(102, 3100)}
	a.tr = publishTree(t, map[string][]byte{a.path: a.v1})
	a.gen1 = a.tr.snapshot(t)
	a.evil = startEvil(t, a.tr.Dir).URL
	a.out = t.TempDir()
	mustSync(t, a.tr.Root, a.out, []string{a.evil})
	wantOut(t, a.out, map[string][]byte{a.path: a.v1})
	a.keys = map[string]*signer{}
	for _, r := range []string{"root", "targets", "snapshot", "timestamp"} {
		a.keys[r] = roleKey(t, a.tr.Keys, r)
	}
	a.tr.write(t, a.path, a.v2)
	if g := a.tr.publish(t); g != 2 {
		t.Fatalf("generation %d, want 2", g)
	}
	return a
}

// refused: a sync now fails with want in its error, and out still holds
// generation 1's object only.
func (a *attack) refused(t *testing.T, want ...string) syncResult {
	t.Helper()
	r := refusedSync(t, a.tr.Root, a.out, []string{a.evil}, want...)
	wantOut(t, a.out, map[string][]byte{a.path: a.v1})
	return r
}

// evilRest re-signs generation 2's rest role (the role that lists the
// object) with the object's entry for evil bytes, which the tree then
// serves, signed by keys.
func (a *attack) evilRest(t *testing.T, keys ...*signer) {
	t.Helper()
	evil := randomBytes(666, 3100)
	name := a.tr.latest(t, "rest")
	a.tr.serve(t, name, forge(t, a.tr.meta(t, name), func(md *metadata.Metadata[metadata.TargetsType]) {
		md.Signed.Targets[a.path] = targetFile(t, a.path, evil)
	}, keys...))
	a.tr.write(t, a.path, evil)
}

// Metadata signed by a key the root does not list, for each top-level
// role that signs a generation: refused, nothing installed.
func TestTUFArbitrarySoftwareForeignKeys(t *testing.T) {
	t.Parallel()
	for _, role := range []string{"timestamp", "snapshot", "targets", "rest"} {
		t.Run(role, func(t *testing.T) {
			t.Parallel()
			a := newAttack(t)
			name := role + ".json"
			if role != "timestamp" {
				name = a.tr.latest(t, role)
			}
			switch role {
			case "timestamp":
				a.tr.serve(t, name, forge[metadata.TimestampType](t, a.tr.meta(t, name), nil, attackerKey(t)))
			case "snapshot":
				a.tr.serve(t, name, forge[metadata.SnapshotType](t, a.tr.meta(t, name), nil, attackerKey(t)))
			case "targets":
				// Generation 2 kept targets version 1, which the agent
				// trusts already: a new version, which the genuine
				// snapshot names, signed by the attacker.
				name = a.bumpTargets(t, attackerKey(t))
			case "rest":
				a.evilRest(t, attackerKey(t))
			}
			a.refused(t, name, "signature")
		})
	}
}

// An object whose bytes differ from its signed hash (same length): not
// installed, and the error says the digest.
func TestTUFArbitrarySoftwareObjectBytes(t *testing.T) {
	t.Parallel()
	a := newAttack(t)
	a.tr.write(t, a.path, tamper(a.v2))
	a.refused(t, a.path, "sha256")
}

// tamper changes one byte of b (same length).
func tamper(b []byte) []byte {
	c := append([]byte(nil), b...)
	c[len(c)/2] ^= 0xff
	return c
}

// bumpTargets serves top-level targets as a version one newer, signed by
// keys, named by generation 2's snapshot re-signed with the genuine key;
// it returns the new file's name.
func (a *attack) bumpTargets(t *testing.T, keys ...*signer) string {
	t.Helper()
	old := a.tr.latest(t, "targets")
	var v int64
	b := forge(t, a.tr.meta(t, old), func(md *metadata.Metadata[metadata.TargetsType]) {
		md.Signed.Version++
		v = md.Signed.Version
	}, keys...)
	name := fmt.Sprintf("%d.targets.json", v)
	a.tr.serve(t, name, b)
	snap := a.tr.latest(t, "snapshot")
	a.tr.serve(t, snap, forge(t, a.tr.meta(t, snap), func(md *metadata.Metadata[metadata.SnapshotType]) {
		md.Signed.Meta["targets.json"].Version = v
	}, a.keys["snapshot"]))
	return name
}
