package codesize

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checked are the packages held to the limits (paths from the module
// root). Add a package once it keeps them.
var checked = []string{
	"pkg/admin", "pkg/agent", "pkg/catalog", "pkg/httprange", "pkg/httpx", "pkg/mirror", "pkg/node", "pkg/proxycache", "pkg/server", "pkg/store",
	"pkg/wire",
}

const (
	maxFileLines = 500
	maxFuncLines = 80
	// reasonMark is what a longer function's doc comment says, in the
	// sentence that gives its reason: "It is over 80 lines because …".
	reasonMark = "over 80 lines"
)

// TestProductCodeSize: no product (non-test) file over maxFileLines, and
// no function over maxFuncLines whose doc comment does not say why.
func TestProductCodeSize(t *testing.T) {
	t.Parallel()
	for _, pkg := range checked {
		dir := filepath.Join("..", "..", filepath.FromSlash(pkg))
		names, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(names) == 0 {
			t.Fatalf("%s: no Go files (%v)", pkg, err)
		}
		for _, name := range names {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			for _, p := range problems(t, name) {
				t.Errorf("%s/%s", pkg, p)
			}
		}
	}
}

// problems lists what in the file breaks the limits.
func problems(t *testing.T, name string) []string {
	src, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	fs := token.NewFileSet()
	f, err := parser.ParseFile(fs, name, src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Base(name)
	var out []string
	if n := fs.File(f.Pos()).LineCount(); n > maxFileLines {
		out = append(out, fmt.Sprintf("%s: %d lines, over %d: split it by concern", base, n, maxFileLines))
	}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Body == nil {
			continue
		}
		n := fs.Position(fd.End()).Line - fs.Position(fd.Pos()).Line + 1
		if n > maxFuncLines && !strings.Contains(strings.ToLower(fd.Doc.Text()), reasonMark) {
			out = append(out, fmt.Sprintf("%s: %s is %d lines, over %d, and its doc comment gives no reason (a sentence with %q): cut it into steps or say why not",
				base, fd.Name.Name, n, maxFuncLines, reasonMark))
		}
	}
	return out
}
