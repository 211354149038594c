package cleanpath

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestLocalPath(t *testing.T) {
	t.Parallel()
	for _, key := range []string{
		"a",
		"debian/pool/main/h/hello/hello_2.10-3_amd64.deb",
		".well-known/x",
		"a/..b/c..d/.x",
		"café/€",
		"~user/x",
		"a b/c d",
		"100%",
		"a!b$&'()+,;=@",
		"console", "nul2", "com", "com10", "lpt", "auxiliary.txt", "prnx", "conin", "x.con", "a/nulx/b",
		"COM¹0",
		"\u212aON", // Kelvin sign: not ASCII, not a device
	} {
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			got, err := LocalPath(key)
			if err != nil || got != filepath.FromSlash(key) {
				t.Fatalf("LocalPath(%q) = %q, %v; want %q", key, got, err, filepath.FromSlash(key))
			}
		})
	}
}

// TestLocalPathRefuses runs on every system: a catalog must write the same
// files on Linux, macOS and Windows, so what one of them reads as another
// name is refused by all.
func TestLocalPathRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, key string
		want      error
	}{
		{"backslash", `a\b`, errBackslash},
		{"backslash dot-dot", `..\evil`, errBackslash},
		{"leading backslash", `\windows\system32`, errBackslash},
		{"drive letter", "C:/x", errDrive},
		{"drive-relative", "C:x", errDrive},
		{"lower drive", "c:", errDrive},
		{"colon later", "a/C:/b", errColon},
		{"alternate data stream", "a/b:c", errColon},
		{"data stream type", "file.txt::$DATA", errColon},
		{"colon first", "1:2", errColon},
		{"oci digest", "v2/x/blobs/sha256:ab", errColon},
		{"question mark", "a?b", errWindowsChar},
		{"star", "a/*", errWindowsChar},
		{"less", "a<b", errWindowsChar},
		{"greater", "a>b", errWindowsChar},
		{"quote", `a"b`, errWindowsChar},
		{"pipe", "a|b", errWindowsChar},
		{"trailing dot", "a.", errTrailing},
		{"trailing dot inside", "dir./x", errTrailing},
		{"trailing dots", "a/b...", errTrailing},
		{"trailing space", "a ", errTrailing},
		{"trailing space inside", "dir /x", errTrailing},
		{"state dir alias", ".relayd-agent./state.json", errTrailing},
		{"con", "con", errDevice},
		{"CON", "CON", errDevice},
		{"nul with extension", "a/nul.txt", errDevice},
		{"nul with extensions", "NuL.tar.gz", errDevice},
		{"aux space extension", "aux .txt", errDevice},
		{"prn dir", "prn/x", errDevice},
		{"com1", "x/COM1", errDevice},
		{"com0", "com0", errDevice},
		{"lpt9 ext", "lpt9.log", errDevice},
		{"com superscript", "COM\u00b9", errDevice},
		{"lpt superscript", "lpt\u00b3.x", errDevice},
		{"conin", "CONIN$", errDevice},
		{"conout", "conout$.txt", errDevice},
		{"dot-dot", "a/../b", errDotDot},
		{"empty", "", errEmptyKey},
		{"NUL byte", "a\x00", errNUL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := LocalPath(tc.key)
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrBadPath) || got != "" {
				t.Fatalf("LocalPath(%q) = %q, %v; want %v", tc.key, got, err, tc.want)
			}
		})
	}
}

// FuzzLocalPath checks that every path LocalPath accepts is a key, is
// local on this system, and holds nothing Windows reads differently.
func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"a", "a/b.c", `a\b`, "c:x", "a/b:c", "nul.txt", "a.", "a /b", "COM\u00b9", "x/../y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		p, err := LocalPath(key)
		if err != nil {
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("LocalPath(%q): %v does not wrap ErrBadPath", key, err)
			}
			return
		}
		if k, err := Key(Escape(key)); err != nil || k != key {
			t.Fatalf("LocalPath accepted %q, which is not a key: %q, %v", key, k, err)
		}
		if !filepath.IsLocal(p) || filepath.ToSlash(p) != key {
			t.Fatalf("LocalPath(%q) = %q: not local, or not the key", key, p)
		}
		if strings.ContainsAny(key, `\:<>"|?*`) {
			t.Fatalf("LocalPath accepted %q", key)
		}
		for seg := range strings.SplitSeq(key, "/") {
			if strings.HasSuffix(seg, ".") || strings.HasSuffix(seg, " ") {
				t.Fatalf("LocalPath accepted %q (segment %q)", key, seg)
			}
		}
	})
}
