package wire

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoProtocolLiterals walks the product Go files of the repository
// (cmd, pkg and internal; not tests, not this package) and fails on a string literal that is a
// relay header or a /-/ path: those names live here, and everyone else
// imports them, so the protocol has one home. Prose that starts with a
// path ("/-/events streams refused") is not a path: a literal with a
// space in it is not taken for one. Scripts and test programs (the
// hostile relay of test/hostile speaks the protocol on its own, on
// purpose) are not walked.
func TestNoProtocolLiterals(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	files := 0
	walk := func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch rel, _ := filepath.Rel(root, path); {
			case rel == filepath.Join("pkg", "wire"), strings.HasPrefix(d.Name(), "."),
				d.Name() == "testdata", d.Name() == "vendor":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		files++
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			if s, err := strconv.Unquote(lit.Value); err == nil && protocolLiteral(s) {
				t.Errorf("%s: %s: use pkg/wire's name for it", fset.Position(lit.Pos()), lit.Value)
			}
			return true
		})
		return nil
	}
	for _, dir := range []string{"cmd", "pkg", "internal"} {
		if err := filepath.WalkDir(filepath.Join(root, dir), walk); err != nil {
			t.Fatal(err)
		}
	}
	if files < 50 {
		t.Fatalf("walked %d product files from %s; the walk missed the repository", files, root)
	}
}

// protocolLiteral reports whether s names a relay header or a /-/ path.
func protocolLiteral(s string) bool {
	switch {
	case strings.HasPrefix(strings.ToLower(s), "x-relay-"):
		return true
	case strings.HasPrefix(s, Prefix):
		return !strings.ContainsAny(s, " \t\n")
	}
	return false
}

func TestProtocolLiteral(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"X-Relay-Peer": true, "x-relay-cache": true, "/-/events": true, "/-/events?": true, "/-/blob/": true, "/-/": true,
		"/-/events streams refused": false, "X-Forwarded-For": false, "/a/-/b": false, "-/mirror/": false, "": false,
	} {
		if got := protocolLiteral(s); got != want {
			t.Errorf("protocolLiteral(%q) = %v, want %v", s, got, want)
		}
	}
}
