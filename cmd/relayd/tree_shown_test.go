package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/relayd/relayd/pkg/admin"
)

// relayd tree never writes a report's non-printing runes raw.
func TestTreeEscapes(t *testing.T) {
	t.Parallel()
	g := admin.GroupView{Group: "g\x1b]0;x\x07", Members: []admin.MemberView{{Node: "n\x1b[2J", Mode: "relay\u202e",
		URL: "http://a\r", Problem: "bad\x1bc"}}}
	var b bytes.Buffer
	printGroup(&b, g, 0)
	out := b.String()
	if strings.ContainsAny(out, "\x1b\x07\r\u202e") {
		t.Fatalf("raw control characters in %q", out)
	}
	for _, want := range []string{`"n\x1b[2J"`, `"g\x1b]0;x\a"`, `"bad\x1bc"`, `"relay\u202e"`} {
		if !strings.Contains(out, want) {
			t.Errorf("%s missing from %q", want, out)
		}
	}
	if shown("nœud 1") != "nœud 1" {
		t.Error("a printable name is changed")
	}
}
