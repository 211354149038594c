package tufclient

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/internal/tuftest"
	"github.com/relayd/relayd/pkg/tufrepo"
	"github.com/relayd/relayd/pkg/wire"
)

// FuzzVerifyGates: whatever a relay serves as rollout.json, VerifyGates
// never panics, and what it accepts is signed by the rollout role of the
// trusted root (go-tuf says so on its own), unexpired and valid gates.
func FuzzVerifyGates(f *testing.F) {
	// A root with a rollout role and gates signed for it; no generation
	// (the pins are made up: SignGates does not look them up).
	base := f.TempDir()
	tree, keys := filepath.Join(base, "tree"), filepath.Join(base, "keys")
	roles, ring := tuftest.Keys(f, keys)
	tuftest.Rollout(f, keys, roles, ring)
	if _, err := tufrepo.Init(tree, ring, roles, tufrepo.Options{Now: func() time.Time { return t0 }}); err != nil {
		f.Fatal(err)
	}
	pin := wire.Pin{Version: 2, Length: 1000, SHA256: strings.Repeat("ab", 32)}
	gates := wire.Gates{Plan: "fleet", Newest: pin, Rings: []wire.Ring{{Name: "canary", Groups: []string{"branch-*"}, Open: pin}, {Name: "broad"}}}
	raw, err := tufrepo.SignGates(tree, ring, gates, 0, t0)
	if err != nil {
		f.Fatal(err)
	}
	rootRaw, err := os.ReadFile(filepath.Join(tree, "-", "tuf", "1.root.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add(bytes.Replace(raw, []byte(`"plan":"fleet"`), []byte(`"plan":"fleeu"`), 1))
	f.Add([]byte(`{"signatures":[],"signed":{"_type":"targets","relayd_rollout":{}}}`))
	root, err := metadata.Root().FromBytes(rootRaw)
	if err != nil {
		f.Fatal(err)
	}
	now := func() time.Time { return t0 }
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := New(rootRaw, Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		got, info, err := c.VerifyGates(b)
		if err != nil {
			return
		}
		md, err := metadata.Targets().FromBytes(b)
		if err != nil {
			t.Fatalf("accepted a file go-tuf does not read: %v", err)
		}
		if err := root.VerifyDelegate(wire.RolloutRole, md); err != nil {
			t.Fatalf("accepted gates the rollout role did not sign: %v", err)
		}
		if err := got.Validate(); err != nil || t0.After(info.Expires) {
			t.Fatalf("accepted invalid or expired gates: %v, expires %v", err, info.Expires)
		}
	})
}
