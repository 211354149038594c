package cleanpath

import (
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, path, want string
	}{
		{"plain", "/a", "a"},
		{"nested", "/debian/pool/main/h/hello/hello_2.10-3_amd64.deb", "debian/pool/main/h/hello/hello_2.10-3_amd64.deb"},
		{"escaped sub-delim", "/a%21b", "a!b"},
		{"raw sub-delim", "/a!b", "a!b"},
		{"lowercase hex", "/a%2fb", "a/b"},
		{"encoded slash splits", "/a%2Fb", "a/b"},
		{"double encoded dot is literal", "/%252e", "%2e"},
		{"double encoded dot-dot is literal", "/a/%252e%252e/b", "a/%2e%2e/b"},
		{"encoded percent", "/100%25", "100%"},
		{"space", "/a%20b", "a b"},
		{"plus is literal", "/a+b", "a+b"},
		{"query char", "/a%3Fb", "a?b"},
		{"hash char", "/a%23b", "a#b"},
		{"utf-8", "/caf%C3%A9/%E2%82%AC", "café/€"},
		{"raw utf-8", "/café", "café"},
		{"dots inside segment", "/a/..b/c../.../x.y", "a/..b/c../.../x.y"},
		{"dot prefix", "/.well-known/x", ".well-known/x"},
		{"colon later", "/a/C:/b", "a/C:/b"},
		{"colon not drive", "/1:2", "1:2"},
		{"go module", "/golang.org/x/net/@v/v0.59.0.zip", "golang.org/x/net/@v/v0.59.0.zip"},
		{"reserved api prefix is not ours", "/-/relays", "-/relays"},
		{"tilde", "/~user/x", "~user/x"},
		{"max length", "/" + strings.Repeat("a", MaxKeyLen), strings.Repeat("a", MaxKeyLen)},
		{"max length escaped", "/" + strings.Repeat("%61", MaxKeyLen), strings.Repeat("a", MaxKeyLen)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Key(tc.path)
			if err != nil || got != tc.want {
				t.Fatalf("Key(%q) = %q, %v; want %q", tc.path, got, err, tc.want)
			}
		})
	}
}

func TestKeyRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, path string
		want       error
		reason     string
	}{
		{"empty", "", errNoSlash, "missing leading slash"},
		{"relative", "a/b", errNoSlash, "missing leading slash"},
		{"root", "/", errEmptyKey, "empty key"},
		{"double slash", "/a//b", errEmptySegment, "empty segment"},
		{"leading double slash", "//a", errEmptySegment, "empty segment"},
		{"trailing slash", "/a/", errEmptySegment, "empty segment"},
		{"encoded leading slash", "/%2Fa", errEmptySegment, "empty segment"},
		{"encoded trailing slash", "/a%2F", errEmptySegment, "empty segment"},
		{"dot", "/a/./b", errDot, "dot segment"},
		{"only dot", "/.", errDot, "dot segment"},
		{"dot-dot", "/a/../b", errDotDot, "dot-dot segment"},
		{"leading dot-dot", "/../etc/passwd", errDotDot, "dot-dot segment"},
		{"trailing dot-dot", "/a/..", errDotDot, "dot-dot segment"},
		{"encoded dot-dot", "/%2e%2e/x", errDotDot, "dot-dot segment"},
		{"mixed case encoded dot-dot", "/a/%2E./b", errDotDot, "dot-dot segment"},
		{"encoded dot", "/a/%2e/b", errDot, "dot segment"},
		{"dot-dot through encoded slash", "/a%2F..%2Fb", errDotDot, "dot-dot segment"},
		{"lone percent", "/a%", errPercent, "invalid percent-encoding"},
		{"short escape", "/a%2", errPercent, "invalid percent-encoding"},
		{"bad hex", "/a%zz", errPercent, "invalid percent-encoding"},
		{"bad second hex", "/a%2g", errPercent, "invalid percent-encoding"},
		{"raw NUL", "/a\x00b", errNUL, "NUL byte"},
		{"encoded NUL", "/a%00b", errNUL, "NUL byte"},
		{"newline", "/a%0Ab", errControl, "control character"},
		{"raw tab", "/a\tb", errControl, "control character"},
		{"DEL", "/a%7Fb", errControl, "control character"},
		{"C1 control", "/a%C2%85b", errControl, "control character"},
		{"raw backslash", `/a\b`, errBackslash, "backslash"},
		{"encoded backslash", "/a%5cb", errBackslash, "backslash"},
		{"encoded backslash dot-dot", "/..%5C..%5Cwindows", errBackslash, "backslash"},
		{"invalid UTF-8", "/a%FFb", errUTF8, "invalid UTF-8"},
		{"truncated UTF-8", "/caf%C3", errUTF8, "invalid UTF-8"},
		{"overlong UTF-8 slash", "/a%C0%AFb", errUTF8, "invalid UTF-8"},
		{"surrogate", "/%ED%A0%80", errUTF8, "invalid UTF-8"},
		{"drive", "/C:", errDrive, "drive letter"},
		{"drive path", "/c:/windows/system32", errDrive, "drive letter"},
		{"drive relative", "/C:foo", errDrive, "drive letter"},
		{"encoded drive", "/C%3A/x", errDrive, "drive letter"},
		{"too long", "/" + strings.Repeat("a", MaxKeyLen+1), errTooLong, "too long"},
		{"too long escaped", "/" + strings.Repeat("%61", MaxKeyLen+1), errTooLong, "too long"},
		{"too long before decoding", "/" + strings.Repeat("a", 3*MaxKeyLen+1), errTooLong, "too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Key(tc.path)
			if !errors.Is(err, ErrBadPath) || !errors.Is(err, tc.want) {
				t.Fatalf("Key(%q) = %q, %v; want %v", tc.path, got, err, tc.want)
			}
			if want := "cleanpath: bad path: " + tc.reason; err.Error() != want {
				t.Errorf("error text %q, want %q", err, want)
			}
			if got != "" {
				t.Errorf("rejected path returned key %q", got)
			}
		})
	}
}

func TestEscape(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, key, want string
	}{
		{"plain", "a/b.c", "/a/b.c"},
		{"unreserved", "AZaz09-._~", "/AZaz09-._~"},
		{"sub-delims", "!$&'()*+,;=", "/!$&'()*+,;="},
		{"colon and at", "golang.org/x/@v/v1.0.0:x", "/golang.org/x/@v/v1.0.0:x"},
		{"space", "a b", "/a%20b"},
		{"percent", "100%", "/100%25"},
		{"literal escape", "%2e", "/%252e"},
		{"query and fragment", "a?b#c", "/a%3Fb%23c"},
		{"utf-8 uppercase hex", "café", "/caf%C3%A9"},
		{"brackets and quote", `[x]"<>`, "/%5Bx%5D%22%3C%3E"},
		{"backslash", `a\b`, "/a%5Cb"},
		{"control", "a\x00\x7f", "/a%00%7F"},
		{"empty", "", "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Escape(tc.key); got != tc.want {
				t.Fatalf("Escape(%q) = %q, want %q", tc.key, got, tc.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for name, key := range map[string]string{
		"plain":           "debian/dists/stable/InRelease",
		"every kept byte": "AZaz09-._~!$&'()*+,;=:@/x",
		"percent":         "%2e%2E/100%",
		"unicode":         "日本語/ファイル.txt",
		"space and query": "a b/c?d#e",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := Escape(key)
			got, err := Key(p)
			if err != nil || got != key {
				t.Fatalf("Key(Escape(%q)) = Key(%q) = %q, %v", key, p, got, err)
			}
			u, err := url.Parse("http://relay" + p)
			if err != nil || u.EscapedPath() != p {
				t.Fatalf("net/url does not keep %q: %v, %v", p, u, err)
			}
		})
	}
}

func TestAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		path string
		max  float64
	}{
		{"clean path", "/debian/pool/main/h/hello/hello_2.10-3_amd64.deb", 0},
		{"escaped path", "/debian/pool/main/h/hello/hello_2.10%2B3_amd64.deb", 1},
		{"rejected escaped", "/a/%2e%2e/b", 1},
		{"rejected raw", "/a/../b", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, func() { _, _ = Key(tc.path) }); n > tc.max {
				t.Errorf("Key(%q) allocates %v times, want <= %v", tc.path, n, tc.max)
			}
		})
	}
	if n := testing.AllocsPerRun(100, func() { _ = Escape("a b/c") }); n > 1 {
		t.Errorf("Escape allocates %v times, want <= 1", n)
	}
}

func FuzzKey(f *testing.F) {
	for _, s := range []string{
		"/", "/a", "/a/b", "/a%21b", "/a!b", "/%252e", "/%2e%2e", "/%2E.", "/a%2F..%2Fb",
		"/a//b", "/a/", "/a%00", "/a%5cb", `/a\b`, "/C:", "/c:x", "/a%FF", "/caf%C3%A9",
		"/%", "/%2", "/%zz", "/a%C2%85", "/a b", "/a?b", "//x", "/-/relays", "/.well-known",
	} {
		f.Add(s)
	}
	dir := filepath.Join(f.TempDir(), "root")
	f.Fuzz(func(t *testing.T, p string) {
		k, err := Key(p)
		if err != nil {
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("Key(%q) error %v does not wrap ErrBadPath", p, err)
			}
			if k != "" {
				t.Fatalf("Key(%q) returned %q with error", p, k)
			}
			return
		}
		// Key decodes exactly once, like net/url.
		dec, uerr := url.PathUnescape(p)
		if uerr != nil || dec != "/"+k {
			t.Fatalf("Key(%q) = %q, but url.PathUnescape gives %q, %v", p, k, dec, uerr)
		}
		if k == "" || len(k) > MaxKeyLen || !utf8.ValidString(k) ||
			strings.HasPrefix(k, "/") || hasDotDotSegment(k) ||
			strings.ContainsAny(k, "\x00\\") {
			t.Fatalf("Key(%q) accepted unsafe key %q", p, k)
		}
		for _, seg := range strings.Split(k, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("Key(%q) = %q has segment %q", p, k, seg)
			}
		}
		for _, r := range k {
			if r < 0x20 || 0x7f <= r && r <= 0x9f {
				t.Fatalf("Key(%q) = %q has control character %U", p, k, r)
			}
		}
		// The key round-trips through its escaped form and through net/url.
		e := Escape(k)
		if k2, err := Key(e); err != nil || k2 != k {
			t.Fatalf("Key(Escape(%q)) = Key(%q) = %q, %v", k, e, k2, err)
		}
		if u, err := url.Parse("http://relay" + e); err != nil || u.EscapedPath() != e {
			t.Fatalf("url.Parse(%q) does not keep the escaped path: %v", e, err)
		}
		// The key stays inside any directory it is joined onto.
		if !filepath.IsLocal(filepath.FromSlash(k)) {
			t.Fatalf("Key(%q) = %q is not local", p, k)
		}
		j := filepath.Join(dir, filepath.FromSlash(k))
		if !strings.HasPrefix(j, dir+string(filepath.Separator)) {
			t.Fatalf("Key(%q) = %q joins to %q, outside %q", p, k, j, dir)
		}
		if rel, err := filepath.Rel(dir, j); err != nil || rel != filepath.Clean(filepath.FromSlash(k)) {
			t.Fatalf("Key(%q) = %q: Rel = %q, %v", p, k, rel, err)
		}
	})
}

// hasDotDotSegment reports whether a "/"-separated key has a ".." segment.
// ".." inside a name ("a..b", "...") is a plain file name and allowed.
func hasDotDotSegment(k string) bool {
	for _, seg := range strings.Split(k, "/") {
		if seg == ".." {
			return true
		}
	}
	return false
}

func BenchmarkKey(b *testing.B) {
	for _, tc := range []struct{ name, path string }{
		{"short", "/a"},
		{"deb", "/debian/pool/main/h/hello/hello_2.10-3_amd64.deb"},
		{"escaped", "/debian/pool/main/h/hello/hello_2.10%2B3_amd64.deb"},
		{"long", "/" + strings.Repeat("segment/", 400) + "x"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = Key(tc.path)
			}
		})
	}
}

func TestBase(t *testing.T) {
	for in, want := range map[string]string{
		"http://relay:20080":           "http://relay:20080",
		" https://hq.example/mirror/ ": "https://hq.example/mirror",
		"ftp://x":                      "",
		"http://":                      "",
		"http://x/?q=1":                "",
		"http://x/#f":                  "",
		"relay:20080":                  "",
	} {
		u, err := Base(in)
		switch {
		case want == "" && !errors.Is(err, ErrBadBase):
			t.Errorf("Base(%q) = %v, %v; want ErrBadBase", in, u, err)
		case want != "" && (err != nil || u.String() != want):
			t.Errorf("Base(%q) = %v, %v; want %s", in, u, err, want)
		}
	}
}

func TestObjectURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, base, key, want string
	}{
		{"root base", "http://relay:20080", "security/a.patch", "http://relay:20080/security/a.patch"},
		{"base with a path", "https://hq.example/mirror/", "a/b", "https://hq.example/mirror/a/b"},
		{"escaped base path", "http://h/my%20mirror", "x", "http://h/my%20mirror/x"},
		{"key to escape", "http://h", "a b/c?d#e%f", "http://h/a%20b/c%3Fd%23e%25f"},
		{"kept characters", "http://h", "x/a:b@c/!$&'()*+,;=", "http://h/x/a:b@c/!$&'()*+,;="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			base, err := Base(tc.base)
			if err != nil {
				t.Fatal(err)
			}
			got := ObjectURL(base, tc.key)
			if got != tc.want {
				t.Fatalf("ObjectURL(%s, %q) = %s, want %s", tc.base, tc.key, got, tc.want)
			}
			// The server reads the key back from the path below the base.
			u, err := url.Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			k, err := Key(strings.TrimPrefix(u.EscapedPath(), base.EscapedPath()))
			if err != nil || k != tc.key {
				t.Fatalf("Key of %s = %q, %v; want %q", got, k, err, tc.key)
			}
		})
	}
}
