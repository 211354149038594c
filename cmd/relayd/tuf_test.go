package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/tufrepo"
	"github.com/relayd/relayd/pkg/wire"
)

// The operator's path through the TUF commands, single machine then a
// 2-of-2 targets threshold signed apart.
func TestTUFCommands(t *testing.T) {
	dir := t.TempDir()
	tree, keys := filepath.Join(dir, "tree"), filepath.Join(dir, "keys")
	if err := os.MkdirAll(filepath.Join(tree, "security"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "security", "a.rpm"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := runner(t)
	for _, r := range []string{"root", "targets", "snapshot", "timestamp", "sec"} {
		run("key id ", "keygen", "--role", r, "--out", keys)
	}
	run("1.root.json", "tuf", "init", tree, "--keys", keys)
	run("published generation 1: 1 objects", "publish", tree, "--keys", keys)
	run("unchanged, kept generation 1", "publish", tree, "--keys", keys)
	run("1.security.json", "tuf", "delegate", tree, "--role", "security", "--paths", "security/**", "--key", filepath.Join(keys, "sec.pub"), "--keys", keys)
	run("re-signed", "publish", tree, "--timestamp-only", "--key", filepath.Join(keys, "timestamp.key"))
	st := run("generation 2, timestamp version 3", "tuf", "status", tree)
	if !strings.Contains(st, "security") || !strings.Contains(st, "nothing staged") {
		t.Fatalf("status:\n%s", st)
	}
	// A second targets key, threshold 2: the next change is staged until
	// the other key signs it.
	run("key id", "keygen", "--role", "targets2", "--out", filepath.Join(dir, "other"))
	run("2.root.json", "tuf", "rotate", tree, "--role", "targets", "--add-key", filepath.Join(dir, "other", "targets2.pub"), "--threshold", "2", "--keys", keys)
	if err := os.WriteFile(filepath.Join(tree, "b"), []byte("b"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := run("staged generation 3", "publish", tree, "--keys", keys)
	staging := filepath.Join(dir, "tree.tuf-staged")
	if !strings.Contains(out, staging) || !strings.Contains(out, "1 of 2 signatures") {
		t.Fatalf("publish short of a targets signature:\n%s", out)
	}
	if _, _, err := runMain(t, "tuf", "commit", tree); err == nil {
		t.Fatal("commit without the second signature succeeded")
	}
	run("signed", "tuf", "sign", "--key", filepath.Join(dir, "other", "targets2.key"), staging)
	run("timestamp.json", "tuf", "commit", tree)
	run("generation 3", "tuf", "status", tree)
}

func TestTUFCommandErrors(t *testing.T) {
	for _, args := range [][]string{
		{"tuf"}, {"tuf", "frobnicate"}, {"tuf", "init"}, {"tuf", "init", "a", "b"}, {"publish", "tree"},
		{"tuf", "sign", "x"}, {"tuf", "combine", "a"}, {"keygen", "--role", "x", "--gossip", "--out", "d"},
	} {
		_, _, err := runMain(t, args...)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("relayd %s: %v, want a usage error", strings.Join(args, " "), err)
		}
	}
	if _, _, err := runMain(t, "tuf", "init", t.TempDir(), "--root-key", "/nonexistent.pub"); err == nil || !strings.Contains(err.Error(), "nonexistent") {
		t.Errorf("a missing key file: %v", err)
	}
}

// The rollout role: created by init or by rotate, shown by status with
// the gates the origin signed.
func TestTUFRolloutCommands(t *testing.T) {
	dir := t.TempDir()
	tree, keys := filepath.Join(dir, "tree"), filepath.Join(dir, "keys")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "a"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := runner(t)
	for _, r := range []string{"root", "targets", "snapshot", "timestamp", "rollout", "rollout2"} {
		run("key id ", "keygen", "--role", r, "--out", keys)
	}
	run("1.root.json", "tuf", "init", tree, "--keys", keys, "--rollout-key", filepath.Join(keys, "rollout.pub"))
	run("published generation 1", "publish", tree, "--keys", keys)
	run("gates: none signed yet", "tuf", "status", tree)
	pin, err := tufrepo.PinOf(tree, 1)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := tufrepo.LoadKeyRing([]string{filepath.Join(keys, "rollout.key")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := wire.Gates{Plan: "fleet", Newest: pin, Rings: []wire.Ring{{Name: "canary", Groups: []string{"branch-a"}, Open: pin}, {Name: "broad", Groups: []string{"*"}}}}
	if _, err := tufrepo.SignGates(tree, ring, g, 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	st := run(`gates: plan "fleet", newest generation 1`, "tuf", "status", tree)
	if !strings.Contains(st, "ring 1 broad") || !strings.Contains(st, "rollout      version 1") {
		t.Fatalf("status:\n%s", st)
	}
	run("2.root.json", "tuf", "rotate", tree, "--rollout-key", filepath.Join(keys, "rollout2.pub"), "--keys", keys)
	run("threshold 1 of 2 keys", "tuf", "status", tree)
	if _, _, err := runMain(t, "tuf", "rotate", tree, "--role", "targets", "--rollout-key", filepath.Join(keys, "rollout2.pub"), "--keys", keys); err == nil {
		t.Fatal("--rollout-key with --role targets accepted")
	}

	// A tree without the role gets it from a rotation.
	tree2 := filepath.Join(dir, "tree2")
	if err := os.MkdirAll(tree2, 0o755); err != nil {
		t.Fatal(err)
	}
	run("1.root.json", "tuf", "init", tree2, "--keys", keys)
	if out := run("root version 1", "tuf", "status", tree2); strings.Contains(out, "rollout") {
		t.Fatalf("a rollout role without --rollout-key:\n%s", out)
	}
	run("2.root.json", "tuf", "rotate", tree2, "--rollout-key", filepath.Join(keys, "rollout.pub"), "--keys", keys)
	run("gates: none signed yet", "tuf", "status", tree2)
}

// runner runs relayd commands that must succeed and say want.
func runner(t *testing.T) func(want string, args ...string) string {
	return func(want string, args ...string) string {
		t.Helper()
		out, errOut, err := runMain(t, args...)
		if err != nil {
			t.Fatalf("relayd %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		if !strings.Contains(out, want) {
			t.Fatalf("relayd %s: output lacks %q:\n%s", strings.Join(args, " "), want, out)
		}
		return out
	}
}
