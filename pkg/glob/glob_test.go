package glob

import (
	"strings"
	"testing"
)

func TestFilter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		patterns []string
		path     string
		want     bool
	}{
		{"no pattern selects all", nil, "anything/at/all", true},
		{"** below a directory", []string{"security/**"}, "security/2026/x.patch", true},
		{"** matches no segment", []string{"security/**"}, "security", true},
		{"a prefix is not a directory", []string{"security/**"}, "securityx/a", false},
		{"platform directory", []string{"software/linux-amd64/**"}, "software/linux-amd64/1.0/agent", true},
		{"other platform", []string{"software/linux-amd64/**"}, "software/windows-amd64/1.0/agent", false},
		{"* within a segment", []string{"software/*/1.0/**"}, "software/win/1.0/a/b", true},
		{"* and another version", []string{"software/*/1.0/**"}, "software/win/2.0/a", false},
		{"leading ** any depth", []string{"**/*.deb"}, "pool/main/a/a_1.deb", true},
		{"leading ** other suffix", []string{"**/*.deb"}, "pool/main/a/a_1.dsc", false},
		{"inner ** no segment", []string{"a/**/z"}, "a/z", true},
		{"inner ** two segments", []string{"a/**/z"}, "a/b/c/z", true},
		{"any pattern of several", []string{"x", "security/**"}, "security/a", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := New(tc.patterns)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Match(tc.path); got != tc.want {
				t.Errorf("%q Match(%q) = %v, want %v", tc.patterns, tc.path, got, tc.want)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, pattern string
		wantMsg       string // in the error
	}{
		{"empty", "", "relative glob"},
		{"absolute", "/abs/**", "relative glob"},
		{"bad class", "a/[/b", "syntax error"},
		{"trailing slash", "security/", `want e.g. "security/**"`},
		{"doubled slash", "a//b", `want e.g. "a/b"`},
		{"slash after **", "**/", `want e.g. "**"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := New([]string{"ok/**", tc.pattern})
			if err == nil {
				t.Fatalf("New(%q) accepted", tc.pattern)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("New(%q): %v; want it to say %q", tc.pattern, err, tc.wantMsg)
			}
		})
	}
}
