package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestParseInterleaved(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	out := fs.String("out", "", "")
	root := fs.String("root", "", "")
	pos, err := parseInterleaved(fs, []string{"--out", "d", "a.txt", "--root", "r.json", "b/c.txt", "--", "--odd"})
	if err != nil {
		t.Fatal(err)
	}
	if *out != "d" || *root != "r.json" || !slices.Equal(pos, []string{"a.txt", "b/c.txt", "--odd"}) {
		t.Fatalf("out %q root %q paths %q", *out, *root, pos)
	}
	if _, err := parseInterleaved(fs, []string{"a", "--nope"}); err == nil {
		t.Fatal("an unknown flag after a path was accepted")
	}
}

func TestIsLoopback(t *testing.T) {
	for s, want := range map[string]bool{"http://127.0.0.1:1": true, "http://127.9.9.9": true, "http://[::1]:80": true,
		"http://localhost:20080": true, "http://10.0.0.1:1": false, "https://relay.example.net": false} {
		u, _ := url.Parse(s)
		if isLoopback(u) != want {
			t.Errorf("isLoopback(%s) = %v, want %v", s, !want, want)
		}
	}
}

func TestLoadgenFlagErrors(t *testing.T) {
	for name, args := range map[string][]string{
		"no relay":       {"--root", "r.json"},
		"too many":       {"--relay", "http://127.0.0.1:1", "--root", "r.json", "--agents", "1000000"},
		"too long":       {"--relay", "http://127.0.0.1:1", "--root", "r.json", "--duration", "2h"},
		"remote":         {"--relay", "http://192.0.2.1:1", "--root", "r.json"},
		"stop, no watch": {"--relay", "http://127.0.0.1:1", "--root", "r.json", "--stop-after-updates", "1"},
	} {
		err := loadgenCmd(context.Background(), args, io.Discard, io.Discard, func(string) (string, bool) { return "", false })
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%s: %v, want a usage error", name, err)
		}
	}
}

// Every agent command says how it is given its trust: --root (env
// RELAYD_ROOT) in the synopsis and the flags, and --pubkey only as the
// way to migrate.
func TestAgentUsageNamesTheRoot(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"fetch", "--help"}, {"agent", "sync", "--help"}, {"agent", "watch", "--help"}, {"loadgen", "--help"}, {"agent"}} {
		_, stderr, _ := runMain(t, args...)
		for _, want := range []string{"--root 1.root.json", "RELAYD_ROOT", "Migrating to TUF"} {
			if args[0] == "agent" && len(args) == 1 && want != "--root 1.root.json" {
				continue // the subcommand list: synopses only
			}
			if !strings.Contains(stderr, want) {
				t.Errorf("relayd %s: no %q in:\n%s", strings.Join(args, " "), want, stderr)
			}
		}
		if strings.Contains(stderr, "--pubkey K") || strings.Contains(stderr, "catalog.pub") {
			t.Errorf("relayd %s still offers --pubkey:\n%s", strings.Join(args, " "), stderr)
		}
	}
	// The same from the environment.
	var stdout, stderr strings.Builder
	err := realMain(context.Background(), []string{"agent", "sync", "--relay", "http://127.0.0.1:1", "--out", t.TempDir()}, &stdout, &stderr,
		envOf(map[string]string{"RELAYD_PUBKEY": "catalog.pub"}))
	if err == nil || !strings.Contains(err.Error(), "Migrating to TUF") || exitCode(err) != 2 {
		t.Errorf("RELAYD_PUBKEY: %v (exit %d), want a usage error pointing at the migration", err, exitCode(err))
	}
}
