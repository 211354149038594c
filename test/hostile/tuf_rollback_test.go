package hostile

// The TUF spec's attacks against agents, end to end: rollback (each
// role), fast-forward and recovery, indefinite freeze and mix-and-match.
// Every `relayd agent sync` is a new process: what it refuses as older
// it knows from the trusted metadata persisted in its state directory.

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/pkg/tufrepo"
)

// refusedKeeping: a sync now fails with want in its error, and out holds
// exactly files.
func (a *attack) refusedKeeping(t *testing.T, files map[string][]byte, want ...string) syncResult {
	t.Helper()
	r := refusedSync(t, a.tr.Root, a.out, []string{a.evil}, want...)
	wantOut(t, a.out, files)
	return r
}

// trustGen2 syncs generation 2: out holds v2.
func (a *attack) trustGen2(t *testing.T) {
	t.Helper()
	mustSync(t, a.tr.Root, a.out, []string{a.evil})
	wantOut(t, a.out, map[string][]byte{a.path: a.v2})
}

// forgeTimestamp re-signs timestamp.json with the genuine key after edit.
func (a *attack) forgeTimestamp(t *testing.T, edit func(*metadata.Metadata[metadata.TimestampType])) {
	t.Helper()
	a.tr.serve(t, "timestamp.json", forge(t, a.tr.meta(t, "timestamp.json"), edit, a.keys["timestamp"]))
}

// nextGeneration serves a snapshot one version newer (edited by edit,
// signed by the genuine key) and a timestamp that names it. Where the
// publisher signs lengths (and the snapshot's hash), they are those of the
// files served at the versions named, as a publisher holding the keys would
// sign them: the attack is in the versions and signatures, not in a length.
func (a *attack) nextGeneration(t *testing.T, edit func(*metadata.Metadata[metadata.SnapshotType])) {
	t.Helper()
	var v int64
	b := forge(t, a.tr.meta(t, a.tr.latest(t, "snapshot")), func(md *metadata.Metadata[metadata.SnapshotType]) {
		md.Signed.Version++
		v = md.Signed.Version
		edit(md)
		for name, m := range md.Signed.Meta {
			served := fmt.Sprintf("%d.%s", m.Version, name)
			if st, err := os.Stat(filepath.Join(a.tr.tufDir(), served)); err == nil && m.Length != 0 {
				m.Length = st.Size()
			}
		}
	}, a.keys["snapshot"])
	a.tr.serve(t, fmt.Sprintf("%d.snapshot.json", v), b)
	a.forgeTimestamp(t, func(md *metadata.Metadata[metadata.TimestampType]) {
		md.Signed.Version++
		m := md.Signed.Meta["snapshot.json"]
		m.Version = v
		if m.Length != 0 {
			m.Length = int64(len(b))
		}
		if _, ok := m.Hashes["sha256"]; ok {
			sum := sha256.Sum256(b)
			m.Hashes["sha256"] = sum[:]
		}
	})
}

// A relay replaying an older version of each role, validly signed and not
// expired, after the agent trusted a newer one: refused as a rollback by a
// new agent process, generation 2's file kept.
func TestTUFRollback(t *testing.T) {
	t.Parallel()
	cases := []struct {
		role string
		want string
		do   func(t *testing.T, a *attack)
	}{
		{"timestamp", "older than the trusted", func(t *testing.T, a *attack) {
			a.tr.serve(t, "timestamp.json", a.gen1["timestamp.json"])
		}},
		{"snapshot", "snapshot", func(t *testing.T, a *attack) {
			a.forgeTimestamp(t, func(md *metadata.Metadata[metadata.TimestampType]) {
				md.Signed.Version++
				md.Signed.Meta["snapshot.json"].Version = 1
			})
		}},
		{"targets", "targets", func(t *testing.T, a *attack) {
			a.nextGeneration(t, func(md *metadata.Metadata[metadata.SnapshotType]) { md.Signed.Meta["targets.json"].Version = 1 })
		}},
		{"delegated role rest", "rest", func(t *testing.T, a *attack) {
			a.nextGeneration(t, func(md *metadata.Metadata[metadata.SnapshotType]) { md.Signed.Meta["rest.json"].Version = 1 })
		}},
	}
	for _, c := range cases {
		t.Run(c.role, func(t *testing.T) {
			t.Parallel()
			a := newAttack(t)
			if c.role == "targets" {
				a.bumpTargets(t, a.keys["targets"]) // targets version 2 in generation 2
			}
			a.trustGen2(t)
			c.do(t, a)
			a.tr.write(t, a.path, a.v1) // the replay's object too
			a.refusedKeeping(t, map[string][]byte{a.path: a.v2}, "older than the trusted", c.want)
		})
	}
}

// Mix and match: generation 2's snapshot served with generation 1's rest
// role under generation 2's name: the version does not match the
// snapshot's, refused.
func TestTUFMixAndMatch(t *testing.T) {
	t.Parallel()
	a := newAttack(t)
	name := a.tr.latest(t, "rest")
	a.tr.serve(t, name, a.gen1["1.rest.json"])
	a.refused(t, name, "version")
}

// Indefinite freeze: an expired timestamp; generation 2's snapshot or rest
// role expired behind a fresh timestamp: refused, saying since when. A
// relay still serving the trusted timestamp (not newer) is no change:
// the sync succeeds and installs nothing new.
func TestTUFFreeze(t *testing.T) {
	t.Parallel()
	past := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	cases := []struct {
		name string
		do   func(t *testing.T, a *attack)
	}{
		{"timestamp", func(t *testing.T, a *attack) {
			a.forgeTimestamp(t, func(md *metadata.Metadata[metadata.TimestampType]) { md.Signed.Expires = past })
		}},
		{"snapshot", func(t *testing.T, a *attack) {
			n := a.tr.latest(t, "snapshot")
			a.tr.serve(t, n, forge(t, a.tr.meta(t, n), func(md *metadata.Metadata[metadata.SnapshotType]) { md.Signed.Expires = past }, a.keys["snapshot"]))
		}},
		{"rest", func(t *testing.T, a *attack) {
			n := a.tr.latest(t, "rest")
			a.tr.serve(t, n, forge(t, a.tr.meta(t, n), func(md *metadata.Metadata[metadata.TargetsType]) { md.Signed.Expires = past }, a.keys["targets"]))
		}},
	}
	for _, c := range cases {
		t.Run("expired "+c.name, func(t *testing.T) {
			t.Parallel()
			a := newAttack(t)
			c.do(t, a)
			a.refused(t, "expired since", "("+c.name+")")
		})
	}
	t.Run("trusted timestamp again", func(t *testing.T) {
		t.Parallel()
		a := newAttack(t)
		a.tr.serve(t, "timestamp.json", a.gen1["timestamp.json"])
		r := agentSync(t, a.tr.Root, a.out, []string{a.evil})
		if r.err != nil {
			t.Fatalf("sync against the trusted timestamp: %s", r)
		}
		if !strings.Contains(r.stdout, "generation 1:") {
			t.Errorf("sync against the trusted timestamp: stdout %q, want generation 1", r.stdout)
		}
		wantOut(t, a.out, map[string][]byte{a.path: a.v1})
	})
}

// Fast-forward: the compromised timestamp (or snapshot) key signs a huge
// version; the agent trusts it, and then refuses the genuine metadata as
// a rollback. Root rotates that key out (spec 5.3.11): the agent drops the
// fast-forwarded metadata and takes the genuine newer generation.
func TestTUFFastForwardRecovery(t *testing.T) {
	t.Parallel()
	for _, role := range []string{"timestamp", "snapshot"} {
		t.Run(role, func(t *testing.T) {
			t.Parallel()
			a := newAttack(t)
			genuine := a.tr.meta(t, "timestamp.json")
			huge := fmt.Sprintf("%d.snapshot.json", int64(1)<<40)
			if role == "timestamp" {
				a.forgeTimestamp(t, func(md *metadata.Metadata[metadata.TimestampType]) { md.Signed.Version = 1 << 40 })
			} else {
				a.tr.serve(t, huge, forge(t, a.tr.meta(t, a.tr.latest(t, "snapshot")), func(md *metadata.Metadata[metadata.SnapshotType]) {
					md.Signed.Version = 1 << 40
				}, a.keys["snapshot"]))
				a.forgeTimestamp(t, func(md *metadata.Metadata[metadata.TimestampType]) {
					md.Signed.Version++
					md.Signed.Meta["snapshot.json"].Version = 1 << 40
				})
			}
			a.trustGen2(t)
			// The operator takes the repository back from the attacker:
			// the genuine timestamp, or (the online timestamp key having
			// signed the attacker's snapshot as version 3) a genuine
			// version 4 that names the genuine snapshot.
			a.tr.serve(t, "timestamp.json", genuine)
			if role == "snapshot" {
				if err := os.Remove(filepath.Join(a.tr.tufDir(), huge)); err != nil {
					t.Fatal(err)
				}
				a.forgeTimestamp(t, func(md *metadata.Metadata[metadata.TimestampType]) { md.Signed.Version = 4 })
			}
			a.refusedKeeping(t, map[string][]byte{a.path: a.v2}, "older than the trusted")

			// It rotates the compromised key and publishes generation 3.
			k := newKey(t, a.tr, role+"-2")
			if _, err := tufrepo.Rotate(a.tr.Dir, a.tr.ring(t), tufrepo.Rotation{Role: role, Add: []*metadata.Key{k}, Remove: []string{a.keys[role].id}}, tufrepo.Options{Workers: 1}); err != nil {
				t.Fatal(err)
			}
			v3 := randomBytes(103, 3200)
			a.tr.write(t, a.path, v3)
			a.tr.publish(t)
			mustSync(t, a.tr.Root, a.out, []string{a.evil})
			wantOut(t, a.out, map[string][]byte{a.path: v3})
		})
	}
}
