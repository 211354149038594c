package glob

import "testing"

func TestFilter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		patterns []string
		path     string
		want     bool
	}{
		{nil, "anything/at/all", true},
		{[]string{"security/**"}, "security/2026/x.patch", true},
		{[]string{"security/**"}, "security", true},
		{[]string{"security/**"}, "securityx/a", false},
		{[]string{"software/linux-amd64/**"}, "software/linux-amd64/1.0/agent", true},
		{[]string{"software/linux-amd64/**"}, "software/windows-amd64/1.0/agent", false},
		{[]string{"software/*/1.0/**"}, "software/win/1.0/a/b", true},
		{[]string{"software/*/1.0/**"}, "software/win/2.0/a", false},
		{[]string{"**/*.deb"}, "pool/main/a/a_1.deb", true},
		{[]string{"**/*.deb"}, "pool/main/a/a_1.dsc", false},
		{[]string{"a/**/z"}, "a/z", true},
		{[]string{"a/**/z"}, "a/b/c/z", true},
		{[]string{"x", "security/**"}, "security/a", true},
	} {
		f, err := New(tc.patterns)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Match(tc.path); got != tc.want {
			t.Errorf("%q Match(%q) = %v, want %v", tc.patterns, tc.path, got, tc.want)
		}
	}
	for _, bad := range []string{"", "/abs/**", "a/[/b"} {
		if _, err := New([]string{bad}); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
}
