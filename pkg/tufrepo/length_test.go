package tufrepo

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// The timestamp gives the snapshot's length and sha256, and the snapshot
// the lengths of targets and the leaf roles (not of bins), each the
// length of the file written; a timestamp re-signed by the origin keeps
// them.
func TestSignedLengths(t *testing.T) {
	f := newFixture(t)
	f.init()
	f.opt.MaxDirectTargets = 4
	for i := range 10 {
		f.write(fmt.Sprintf("docs/f%02d", i), "x")
	}
	f.publish()
	dir := filepath.Join(f.tree, "-", "tuf")
	check := func() {
		t.Helper()
		ts, err := metadata.Timestamp().FromFile(filepath.Join(dir, TimestampFile))
		if err != nil {
			t.Fatal(err)
		}
		mf := ts.Signed.Meta["snapshot.json"]
		raw, err := os.ReadFile(filepath.Join(dir, fileName(mf.Version, metadata.SNAPSHOT)))
		if err != nil {
			t.Fatal(err)
		}
		if h := sha256.Sum256(raw); mf.Length != int64(len(raw)) || string(mf.Hashes["sha256"]) != string(h[:]) {
			t.Fatalf("timestamp says snapshot length %d sha256 %x; the file has %d bytes, %x", mf.Length, mf.Hashes["sha256"], len(raw), h)
		}
		snap, err := metadata.Snapshot().FromBytes(raw)
		if err != nil {
			t.Fatal(err)
		}
		bins := 0
		for name, m := range snap.Signed.Meta {
			role := strings.TrimSuffix(name, ".json")
			st, err := os.Stat(filepath.Join(dir, fileName(m.Version, role)))
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case strings.Contains(role, binSuffix+"-"):
				bins++
				if m.Length != 0 {
					t.Errorf("snapshot gives bin %s a length (%d): bins are many", name, m.Length)
				}
			case m.Length != st.Size():
				t.Errorf("snapshot gives %s length %d, the file has %d bytes", name, m.Length, st.Size())
			}
		}
		if bins == 0 {
			t.Fatal("no hashed bins: the test means a role with bins")
		}
	}
	check()
	f.now = f.now.Add(20 * time.Hour)
	if ok, err := RefreshTimestamp(f.tree, f.ring, 0, f.now); err != nil || !ok {
		t.Fatalf("RefreshTimestamp: %v %v", ok, err)
	}
	check()
}
