package wire

import (
	"errors"
	"strings"
	"testing"
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
