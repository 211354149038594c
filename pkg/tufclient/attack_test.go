// The spec's attacks (TUF 1.0, "Goals to protect against"), each failing
// closed: nothing the attacker serves gets into the catalog, and the last
// verified state stays current.
package tufclient

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// forge decodes raw, edits it and signs it with keys.
func forge[T metadata.Roles](t *testing.T, raw []byte, edit func(*metadata.Metadata[T]), keys ...*testKey) []byte {
	t.Helper()
	md, err := (&metadata.Metadata[T]{}).FromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(md)
	}
	md.ClearSignatures()
	for _, k := range keys {
		if _, err := md.Sign(k.signer); err != nil {
			t.Fatal(err)
		}
	}
	b, err := md.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// refused runs an update that must fail with want (nil: any error) and
// leave the state as it was.
func (f *fixture) refused(t *testing.T, want error) error {
	t.Helper()
	before, stored := f.c.Current(), storedFiles(t, f.dir)
	st, err := f.c.Update(context.Background(), f.srv)
	if err == nil {
		t.Fatalf("update succeeded (generation %d), want %v", st.Catalog.Generation, want)
	}
	if want != nil && !errors.Is(err, want) {
		t.Fatalf("update: %v; want %v", err, want)
	}
	if f.c.Current() != before {
		t.Error("a refused update changed the current state")
	}
	if after := storedFiles(t, f.dir); !maps.Equal(after, stored) {
		t.Errorf("a refused update changed the stored files: %v, was %v", slices.Sorted(maps.Keys(after)), slices.Sorted(maps.Keys(stored)))
	}
	return err
}

// storedFiles is what dir holds but the roots (a verified root is stored
// even when the update fails later).
func storedFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range entries {
		if !isRoot(e.Name()) {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			m[e.Name()] = string(b)
		}
	}
	return m
}

// evil publishes a new generation in which security lists evil/one.
func (f *fixture) evil() {
	f.repo.add("security", "security/evil", "evil")
	f.repo.publish()
	f.srv.sync(f.repo)
}

func TestAttackArbitrarySoftware(t *testing.T) {
	f := newFixture(t)
	f.repo.snapHash = false // let the signature, not a hash, be what refuses it
	f.update(t)
	f.evil()
	mallory := newKey(t)
	f.srv.set("2.security.json", forge[metadata.TargetsType](t, f.repo.files["2.security.json"], nil, mallory))
	f.refused(t, &metadata.ErrUnsignedMetadata{})
	// A timestamp signed by the wrong key.
	f.srv.sync(f.repo)
	f.srv.set("timestamp.json", forge[metadata.TimestampType](t, f.repo.files["timestamp.json"], nil, mallory))
	f.refused(t, &metadata.ErrUnsignedMetadata{})
	// With hashes listed, the tampered file fails on its hash first.
	f2 := newFixture(t)
	f2.update(t)
	f2.evil()
	f2.srv.set("2.security.json", forge[metadata.TargetsType](t, f2.repo.files["2.security.json"], func(m *metadata.Metadata[metadata.TargetsType]) { m.Signed.Version = 2 }, mallory))
	f2.refused(t, &metadata.ErrLengthOrHashMismatch{})
}

func TestAttackRollbackTimestamp(t *testing.T) {
	f := newFixture(t)
	old := f.repo.files["timestamp.json"]
	f.repo.resign(t0)
	f.srv.sync(f.repo)
	f.update(t)
	f.srv.set("timestamp.json", old) // version 1 after version 2: still valid, older
	err := f.refused(t, ErrRollback)
	if !errors.Is(err, &metadata.ErrBadVersionNumber{}) {
		t.Errorf("rollback does not wrap go-tuf's error: %v", err)
	}
}

func TestAttackRollbackSnapshot(t *testing.T) {
	f := newFixture(t)
	f.update(t)
	f.evil()
	f.update(t)
	// The timestamp key's holder names snapshot 1 in a newer timestamp.
	ts := forge(t, f.repo.files["timestamp.json"], func(m *metadata.Metadata[metadata.TimestampType]) {
		m.Signed.Version = 9
		m.Signed.Meta["snapshot.json"] = f.repoMeta(t, "1.snapshot.json", 1)
	}, f.repo.keys["timestamp"]...)
	f.srv.set("timestamp.json", ts)
	f.refused(t, ErrRollback)
}

func (f *fixture) repoMeta(t *testing.T, name string, version int64) *metadata.MetaFiles {
	return f.repo.metaFile(version, f.repo.files[name])
}

func TestAttackRollbackTargetsAndDelegatedRole(t *testing.T) {
	for _, role := range []string{"targets", "security", "bin"} {
		t.Run(role, func(t *testing.T) {
			f := newFixture(t)
			if role == "bin" {
				role = f.repo.binOf("rest", "debian/pool/a.deb")
			}
			f.update(t)
			oldMeta := f.repo.snap.Signed.Meta[role+".json"]
			f.repo.dirty[role] = true
			f.repo.publish()
			f.srv.sync(f.repo)
			f.update(t)
			// Generation 3 lists the role at its version 1 again.
			f.repo.snap.Signed.Meta[role+".json"] = oldMeta
			f.repo.publish()
			f.srv.sync(f.repo)
			f.refused(t, ErrRollback)
		})
	}
}

func TestAttackFastForwardAndRecovery(t *testing.T) {
	// "replaced": the new root drops the leaked key, so the attacker's
	// timestamp no longer verifies. "added": the new root keeps it beside
	// a new one; only the spec's rule (5.3.11: timestamp keys changed,
	// drop the trusted timestamp) lets the client recover.
	for _, keep := range []bool{false, true} {
		t.Run(map[bool]string{false: "replaced", true: "added"}[keep], func(t *testing.T) {
			f := newFixture(t)
			f.update(t)
			// The timestamp key leaks; the attacker's timestamp jumps to 1000.
			leaked := f.repo.keys["timestamp"]
			f.srv.set("timestamp.json", forge(t, f.repo.files["timestamp.json"], func(m *metadata.Metadata[metadata.TimestampType]) {
				m.Signed.Version = 1000
			}, leaked...))
			if st := f.update(t); st.TimestampVersion != 1000 {
				t.Fatalf("timestamp %d", st.TimestampVersion)
			}
			// The repository goes on: its timestamp looks like a rollback now.
			f.repo.resign(t0)
			f.srv.sync(f.repo)
			f.refused(t, ErrRollback)
			// The operator rotates the timestamp key; the client recovers.
			keys := []*testKey{newKey(t)}
			if keep {
				keys = append(keys, leaked...)
			}
			f.repo.rotate("timestamp", keys...)
			f.repo.resign(t0)
			f.srv.sync(f.repo)
			st := f.update(t)
			if st.TimestampVersion != 3 || st.RootVersion != 2 {
				t.Errorf("after recovery: timestamp %d, root %d; want 3, 2", st.TimestampVersion, st.RootVersion)
			}
			// And a restart keeps the recovered state, not the attacker's.
			if got := f.client(t).Current(); got == nil || got.TimestampVersion != 3 {
				t.Errorf("restart after recovery: %+v", got)
			}
			if keep {
				return
			}
			// The leaked key signs nothing that is accepted any more.
			f.srv.set("timestamp.json", forge(t, f.repo.files["timestamp.json"], func(m *metadata.Metadata[metadata.TimestampType]) {
				m.Signed.Version = 2000
			}, leaked...))
			f.refused(t, &metadata.ErrUnsignedMetadata{})
		})
	}
}

func TestAttackFreeze(t *testing.T) {
	f := newFixture(t)
	st := f.update(t)
	// The relay keeps serving the day-old timestamp: it expires.
	f.clk.Advance(25 * time.Hour)
	err := f.refused(t, ErrExpired)
	if want := "metadata expired since 2026-12-08T10:00:00Z (timestamp)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	var ee *ExpiredError
	if !errors.As(err, &ee) || ee.Role != "timestamp" {
		t.Errorf("error %v is not an ExpiredError for timestamp", err)
	}
	if f.c.Current() != st {
		t.Error("the last verified state is gone")
	}
	// An expired timestamp that is newer is refused too.
	f.repo.resign(t0)
	f.srv.sync(f.repo)
	f.refused(t, ErrExpired)
	// An old-but-valid timestamp is not newer: no update.
	f2 := newFixture(t)
	f2.update(t)
	old := f2.repo.files["timestamp.json"]
	f2.evil()
	f2.srv.set("timestamp.json", old)
	if st := f2.update(t); st.Catalog.Generation != 1 {
		t.Errorf("generation %d from an old timestamp", st.Catalog.Generation)
	}
}

func TestExpiredRoot(t *testing.T) {
	f := newFixture(t)
	f.update(t)
	f.clk.Advance(366 * 24 * time.Hour)
	f.repo.resign(f.clk.Now())
	f.srv.sync(f.repo)
	err := f.refused(t, ErrExpired)
	if want := "metadata expired since 2027-12-07T10:00:00Z (root)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestAttackEndlessData(t *testing.T) {
	t.Run("longer than the snapshot says", func(t *testing.T) {
		f := newFixture(t)
		f.update(t)
		f.evil()
		f.srv.set("2.security.json", append(bytes.Clone(f.repo.files["2.security.json"]), bytes.Repeat([]byte(" "), 1<<20)...))
		f.refused(t, nil)
	})
	t.Run("fetcher ignoring the limit", func(t *testing.T) {
		f := newFixture(t)
		f.update(t)
		f.evil()
		f.srv.set("2.snapshot.json", append(bytes.Clone(f.repo.files["2.snapshot.json"]), bytes.Repeat([]byte(" "), 1<<20)...))
		before := f.c.Current()
		if _, err := f.c.Update(context.Background(), greedy{f.srv}); !errors.Is(err, &metadata.ErrDownloadLengthMismatch{}) {
			t.Errorf("update: %v", err)
		}
		if f.c.Current() != before {
			t.Error("state changed")
		}
	})
	t.Run("beyond MaxBytes when no length is given", func(t *testing.T) {
		f := newFixture(t)
		f.repo.snapHash = false
		f.update(t)
		for i := range 200 {
			f.repo.add("security", "security/big/"+strings.Repeat("x", 40)+string(rune('a'+i%26))+string(rune('a'+i/26)), "x")
		}
		f.repo.publish()
		f.srv.sync(f.repo)
		c, err := New(f.repo.files["1.root.json"], Options{Now: f.clk.Now, MaxBytes: 20000})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Update(context.Background(), f.srv); err == nil || !strings.Contains(err.Error(), "security") {
			t.Errorf("update within MaxBytes 20000: %v", err)
		}
	})
	t.Run("timestamp over 16 KiB", func(t *testing.T) {
		f := newFixture(t)
		f.srv.set("timestamp.json", bytes.Repeat([]byte(" "), TimestampMaxBytes+1))
		if _, err := f.c.Update(context.Background(), f.srv); err == nil {
			t.Error("17 KiB timestamp accepted")
		}
	})
}

// greedy is a Fetcher that returns whole files whatever the limit.
type greedy struct{ s *server }

func (g greedy) FetchMeta(ctx context.Context, name string, _ int64) ([]byte, error) {
	return g.s.FetchMeta(ctx, name, 1<<40)
}

func TestAttackMixAndMatch(t *testing.T) {
	f := newFixture(t)
	f.repo.snapHash = false // the versions, not hashes, must catch it
	f.update(t)
	f.evil()
	f.evil()
	// Generation 3's snapshot name serving generation 2's snapshot.
	f.srv.set("3.snapshot.json", f.repo.files["2.snapshot.json"])
	err := f.refused(t, &metadata.ErrBadVersionNumber{})
	if errors.Is(err, ErrRollback) {
		t.Errorf("mix-and-match reported as a rollback: %v", err)
	}
	// Generation 3's security role name serving generation 2's.
	f.srv.sync(f.repo)
	f.srv.set("3.security.json", f.repo.files["2.security.json"])
	f.refused(t, &metadata.ErrBadVersionNumber{})
}

func TestAttackExtraneousDependencies(t *testing.T) {
	f := newFixture(t)
	r := f.repo
	r.add("software", "security/2026/CVE-1.rpm", "software signs a security patch")
	r.add("software", "security/new.rpm", "software signs a new security path")
	r.add("security", "software/linux-amd64/1.2.3/app.tar.gz", "security signs software")
	r.add("security", "elsewhere/x", "outside every team")
	right := r.binOf("rest", "debian/pool/b.deb")
	for _, bin := range r.roles["rest"].Signed.Delegations.SuccinctRoles.GetRoles() {
		if bin != right {
			r.add(bin, "debian/pool/b.deb", "listed in a bin it does not hash to")
			break
		}
	}
	r.publish()
	f.srv.sync(r)
	st := f.update(t)
	checkCatalog(t, st.Catalog, f.want)
}

func TestAttackKeyCompromise(t *testing.T) {
	t.Run("below threshold", func(t *testing.T) {
		f := newFixture(t)
		k1, k2 := newKey(t), newKey(t)
		f.repo.rotate("targets", k1, k2)
		f.repo.root.Signed.Roles["targets"].Threshold = 2
		f.repo.signRoot(nil)
		f.repo.dirty["targets"] = true
		f.repo.snapHash = false
		f.repo.publish()
		f.srv.sync(f.repo)
		name := versioned(f.repo.roles["targets"].Signed.Version, "targets")
		f.srv.set(name, forge[metadata.TargetsType](t, f.repo.files[name], nil, k1))
		f.refused(t, &metadata.ErrUnsignedMetadata{})
		f.srv.set(name, forge[metadata.TargetsType](t, f.repo.files[name], nil, k1, k2))
		if st := f.update(t); st.RootVersion != 2 {
			t.Errorf("root %d", st.RootVersion)
		}
	})
	t.Run("delegation key replaced by the delegator", func(t *testing.T) {
		// targets gives security a new key; security, unchanged, is still
		// signed by the old one: it is verified again, not kept.
		f := newFixture(t)
		f.update(t)
		k := newKey(t)
		d := f.repo.roles["targets"].Signed.Delegations
		d.Keys[k.id] = k.pub
		d.Roles[0].KeyIDs = []string{k.id}
		f.repo.dirty["targets"] = true
		f.repo.publish()
		f.srv.sync(f.repo)
		f.refused(t, &metadata.ErrUnsignedMetadata{})
	})
	t.Run("revoked key after rotation", func(t *testing.T) {
		f := newFixture(t)
		f.update(t)
		gen1 := f.repo.snapshotFiles()
		old := f.repo.keys["targets"]
		f.repo.rotate("targets", newKey(t))
		f.repo.dirty["targets"] = true
		f.repo.snapHash = false
		f.repo.publish()
		f.srv.sync(f.repo)
		// The new root is trusted, then the timestamp is refused.
		f.srv.set("timestamp.json", forge[metadata.TimestampType](t, f.repo.files["timestamp.json"], nil, newKey(t)))
		f.refused(t, &metadata.ErrUnsignedMetadata{})
		// The generation trusted before the rotation is signed by the
		// revoked key: a source going back to it gets an error, not "no
		// change" (Current stays, as after any failed update).
		for name, b := range gen1 {
			if !isRoot(name) {
				f.srv.set(name, b)
			}
		}
		f.refused(t, &metadata.ErrUnsignedMetadata{})
		// The new generation with targets signed by the revoked key.
		f.srv.sync(f.repo)
		name := versioned(f.repo.roles["targets"].Signed.Version, "targets")
		f.srv.set(name, forge[metadata.TargetsType](t, f.repo.files[name], nil, old...))
		f.refused(t, &metadata.ErrUnsignedMetadata{})
		f.srv.sync(f.repo)
		if st := f.update(t); st.RootVersion != 2 {
			t.Errorf("root %d", st.RootVersion)
		}
	})
}
