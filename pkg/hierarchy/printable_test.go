package hierarchy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/clock"
)

// A report's strings with a rune that does not print (terminal escapes,
// bidi overrides, invalid UTF-8) are refused as they are decoded.
func TestDecodeRefusesUnprintable(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"node escape":    `{"group":"g","node":"n\u001b[2J"}`,
		"group newline":  `{"group":"g\n","node":"n"}`,
		"problem bell":   `{"group":"g","node":"n","problem":"x\u0007"}`,
		"mode C1":        `{"group":"g","node":"n","mode":"\u009b31m"}`,
		"url bidi":       `{"group":"g","node":"n","url":"http://a\u202eb"}`,
		"upstream":       `{"group":"g","node":"n","upstream":["http://a","\u001b]0;x\u0007"]}`,
		"invalid UTF-8":  "{\"group\":\"g\",\"node\":\"n\xff\"}",
		"child's node":   `{"group":"g","node":"n","children":[{"group":"h","node":"\u001bc"}]}`,
		"lone surrogate": `{"group":"g","node":"n\ud800"}`,
	} {
		if _, err := DecodeReport(strings.NewReader(body)); !errors.Is(err, ErrBadReport) {
			t.Errorf("%s: %v, want ErrBadReport", name, err)
		}
	}
	if _, err := DecodeReport(strings.NewReader(`{"group":"zweigstelle-müller","node":"nœud 1","problem":"no catalog: «x»"}`)); err != nil {
		t.Errorf("printable names: %v", err)
	}
	if got := Printable("a\x1b[2Jb\xff", 5); got != "a?[2J" {
		t.Errorf("Printable: %q", got)
	}
	if got := Printable("ééé", 5); got != "éé" {
		t.Errorf("Printable cut in a rune: %q", got)
	}
}

// A report sent in the future of the receiver's clock is taken as sent
// when it arrived: ages stay true.
func TestPutClampsSent(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	tr := NewTree(time.Minute, clock.NewFake(now))
	far := time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)
	r := Report{Group: "g", Node: "n", Sent: far, Children: []Report{{Group: "h", Node: "m", Sent: far}}}
	if err := tr.Put(r); err != nil {
		t.Fatal(err)
	}
	got := tr.Children()[0]
	if !got.Sent.Equal(now) || !got.Children[0].Sent.Equal(now) {
		t.Fatalf("sent %v / %v, want %v", got.Sent, got.Children[0].Sent, now)
	}
	v := View("top", 1, nil, tr.Children(), now)
	if a := v.Children[0].Members[0].Age; a != "0s" {
		t.Fatalf("age %q", a)
	}
	// A little ahead (clocks differ) is kept.
	tr.Put(Report{Group: "g", Node: "n", Sent: now.Add(30 * time.Second)})
	if got := tr.Children()[0].Sent; !got.Equal(now.Add(30 * time.Second)) {
		t.Fatalf("sent %v", got)
	}
}
