package tufrepo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// A team role signs only inside its paths: a target it lists outside them
// is not trusted by go-tuf.
func TestDelegationOutsidePathsNotTrusted(t *testing.T) {
	f := newFixture(t)
	f.init()
	sec := f.keygen("sec")
	f.ring = f.ringOf("root", "targets", "snapshot", "timestamp", "sec")
	f.write("security/a.rpm", "a")
	f.write("software/b", "b")
	f.publish()
	if _, err := Delegate(context.Background(), f.tree, f.ring, Delegation{Role: "security", Paths: []string{"security/**"}, Keys: []*metadata.Key{sec}}, f.opt); err != nil {
		t.Fatal(err)
	}
	u := f.client()
	f.verifyTarget(u, "security/a.rpm", "a")
	f.verifyTarget(u, "software/b", "b")
	// The security key signs a new security role listing software/b with
	// other content: go-tuf must not take it.
	s, err := load(f.tree)
	if err != nil {
		t.Fatal(err)
	}
	m := s.roles["security"]
	m.Signed.Version++
	tf := *m.Signed.Targets["security/a.rpm"]
	m.Signed.Targets["software/evil"] = &tf
	m.ClearSignatures()
	b, _, err := signWith(f.ringOf("sec"), m, s.entries["security"].keyIDs)
	if err != nil {
		t.Fatal(err)
	}
	c := &change{}
	c.add(fileName(m.Signed.Version, "security"), "security", b, nil, s.entries["security"])
	snap := metadata.Snapshot(f.now.Add(time.Hour))
	snap.Signed.Meta = s.snapshot.Signed.Meta
	snap.Signed.Meta["security.json"] = &metadata.MetaFiles{Version: m.Signed.Version}
	snap.Signed.Version = s.generation() + 1
	if err := c.addSigned(f.ring, snap, fileName(snap.Signed.Version, "snapshot"), "snapshot", rootEntry(s.root, "snapshot")); err != nil {
		t.Fatal(err)
	}
	ts := metadata.Timestamp(f.now.Add(time.Hour))
	ts.Signed.Version = s.timestamp.Signed.Version + 1
	ts.Signed.Meta["snapshot.json"] = &metadata.MetaFiles{Version: snap.Signed.Version}
	if err := c.addSigned(f.ring, ts, TimestampFile, "timestamp", rootEntry(s.root, "timestamp")); err != nil {
		t.Fatal(err)
	}
	if _, err := install(s, c.files); err != nil {
		t.Fatal(err)
	}
	u = f.client()
	if tf, err := u.GetTargetInfo("software/evil"); err == nil {
		t.Fatalf("go-tuf trusted a target the security role listed outside its paths: %+v", tf)
	}
}

// Threshold 2 of 3 for targets: the publish stages, two machines sign
// copies, combine merges them, commit installs; go-tuf verifies.
func TestThresholdSignCombineCommit(t *testing.T) {
	f := newFixture(t)
	t2, t3 := f.keygen("targets2"), f.keygen("targets3")
	f.roles["targets"] = RoleKeys{Keys: []*metadata.Key{f.roles["targets"].Keys[0], t2, t3}, Threshold: 2}
	f.init()
	f.ring = f.ringOf("snapshot", "timestamp", "targets")
	f.write("a", "a")
	res := f.publish()
	if res.StagedIn == "" || len(res.Needs) == 0 {
		t.Fatalf("publish with 1 of 2 targets keys: %+v", res)
	}
	if _, err := os.Stat(filepath.Join(f.tree, "-", "tuf", TimestampFile)); err == nil {
		t.Fatal("a staged generation wrote timestamp.json")
	}
	if _, err := Commit(f.tree, nil, f.opt); err == nil || !strings.Contains(err.Error(), "lacks signatures") {
		t.Fatalf("commit short of signatures: %v", err)
	}
	// Another machine signs a copy of the staged directory.
	copyDir := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(copyDir, os.DirFS(res.StagedIn)); err != nil {
		t.Fatal(err)
	}
	if _, err := SignStaged(copyDir, f.ringOf("targets3")); err != nil {
		t.Fatal(err)
	}
	for _, n := range res.Needs {
		p := filepath.Join(res.StagedIn, n.File)
		if err := Combine(p, []string{p, filepath.Join(copyDir, n.File)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Commit(f.tree, nil, f.opt); err != nil {
		t.Fatalf("commit: %v", err)
	}
	f.verifyTarget(f.client(), "a", "a")
	if _, err := os.Stat(res.StagedIn); err == nil {
		t.Fatal("the staging directory is still there after commit")
	}
}

// Root rotation 1→2 (a new root key, threshold 2): staged until both old
// and new thresholds sign, then go-tuf walks from 1.root.json.
func TestRootRotation(t *testing.T) {
	f := newFixture(t)
	f.init()
	f.write("a", "a")
	f.publish()
	r2 := f.keygen("root2")
	oldID, _ := f.roles["root"].Keys[0].ID()
	res, err := Rotate(f.tree, f.ringOf("root2"), Rotation{Role: "root", Add: []*metadata.Key{r2}, Remove: []string{oldID}}, f.opt)
	if err != nil || res.StagedIn == "" {
		t.Fatalf("rotation signed by the new key only must be staged: %+v %v", res, err)
	}
	if _, err := Commit(f.tree, nil, f.opt); err == nil {
		t.Fatal("commit of a root without the old threshold succeeded")
	}
	if _, err := Commit(f.tree, f.ringOf("root"), f.opt); err != nil {
		t.Fatalf("commit: %v", err)
	}
	// A new timestamp key: the next publish re-signs with it.
	ts2 := f.keygen("timestamp2")
	tsID, _ := f.roles["timestamp"].Keys[0].ID()
	if res, err := Rotate(f.tree, f.ringOf("root2"), Rotation{Role: "timestamp", Add: []*metadata.Key{ts2}, Remove: []string{tsID}}, f.opt); err != nil || len(res.Needs) > 0 {
		t.Fatalf("rotate timestamp: %+v %v", res, err)
	}
	f.ring = f.ringOf("targets", "snapshot", "timestamp2")
	if res := f.publish(); !res.Changed {
		t.Fatal("publish after a timestamp key rotation re-signed nothing")
	}
	u := f.client()
	if v := u.GetTrustedMetadataSet().Root.Signed.Version; v != 3 {
		t.Fatalf("go-tuf trusts root version %d, want 3", v)
	}
	f.verifyTarget(u, "a", "a")
}

// The origin's refresh: only past half the lifetime, version+1, same
// snapshot; go-tuf accepts it after the old one expired.
func TestRefreshTimestamp(t *testing.T) {
	f := newFixture(t)
	f.init()
	f.write("a", "a")
	f.publish()
	ring := f.ringOf("timestamp")
	if did, err := RefreshTimestamp(f.tree, ring, 24*time.Hour, f.now.Add(time.Hour)); err != nil || did {
		t.Fatalf("refresh at 1h of 24h: %v %v", did, err)
	}
	f.now = f.now.Add(20 * time.Hour)
	if did, err := RefreshTimestamp(f.tree, ring, 24*time.Hour, f.now); err != nil || !did {
		t.Fatalf("refresh at 20h of 24h: %v %v", did, err)
	}
	f.now = f.now.Add(10 * time.Hour) // past the first timestamp's expiry
	u := f.client()
	if v := u.GetTrustedMetadataSet().Timestamp.Signed.Version; v != 2 {
		t.Fatalf("timestamp version %d, want 2", v)
	}
	if err := ResignTimestamp(f.tree, f.ringOf("snapshot"), time.Hour, f.now); err == nil {
		t.Fatal("a refresh without the timestamp key succeeded")
	}
}

// Bad input: a clear error and nothing written.
func TestBadInputWritesNothing(t *testing.T) {
	f := newFixture(t)
	f.init()
	f.write("a", "a")
	f.publish()
	before := f.files()
	deep := strings.Repeat("d/", MaxDepth) + "f"
	f.write(deep, "x")
	if _, err := Publish(context.Background(), f.tree, f.ring, f.opt); err == nil || !strings.Contains(err.Error(), "deeper") {
		t.Fatalf("a path of %d levels: %v", MaxDepth+1, err)
	}
	if err := os.RemoveAll(filepath.Join(f.tree, "d")); err != nil {
		t.Fatal(err)
	}
	if _, err := Delegate(context.Background(), f.tree, f.ring, Delegation{Role: "root", Paths: []string{"x/**"}, Keys: f.roles["targets"].Keys}, f.opt); err == nil {
		t.Fatal("a team role named root was accepted")
	}
	if _, err := Rotate(f.tree, f.ring, Rotation{Role: "targets", Threshold: 3}, f.opt); err == nil {
		t.Fatal("a threshold above the key count was accepted")
	}
	if _, err := Init(f.tree, f.ring, f.roles, f.opt); err == nil {
		t.Fatal("a second init was accepted")
	}
	if after := f.files(); len(after) != len(before) {
		t.Fatalf("bad input wrote files: %v → %v", before, after)
	}
}
