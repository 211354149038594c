package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"net/url"
	"slices"
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
