package deps

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/relayd/relayd/"

// behaviour are the packages of the behaviour layer and of the HTTP
// surface they feed, with the storage and membership parts only the node
// wires. Only the node may import them.
var behaviour = []string{
	"pkg/proxycache", "pkg/mirror", "pkg/hierarchy", "pkg/store", "pkg/group", "pkg/events", "pkg/server", "pkg/origin",
}

// pkg is the part of `go list -json` the test reads.
type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// list runs `go list -json` on the patterns for goos (empty: the host's).
func list(t *testing.T, goos string, patterns ...string) map[string]pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-e", "-json"}, patterns...)...)
	cmd.Dir = "../.."
	cmd.Env = os.Environ()
	if goos != "" {
		cmd.Env = append(cmd.Env, "GOOS="+goos)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", patterns, err, stderr.String())
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs[strings.TrimPrefix(p.ImportPath, module)] = p
	}
	return pkgs
}

// forbidden returns the paths of imports that are behaviour packages.
func forbidden(imports []string) []string {
	var out []string
	for _, imp := range imports {
		if slices.Contains(behaviour, strings.TrimPrefix(imp, module)) {
			out = append(out, imp)
		}
	}
	return out
}

// TestLayers: who may import what.
func TestLayers(t *testing.T) {
	t.Parallel()
	for _, goos := range []string{"linux", "windows", "darwin"} {
		pkgs := list(t, goos, "./cmd/relayd", "./pkg/admin", "./pkg/admindoc", "./pkg/httpx")
		// cmd/relayd: the node, the admin client, the agent and
		// vocabulary; the behaviour layer only through the node.
		if bad := forbidden(pkgs["cmd/relayd"].Imports); len(bad) > 0 {
			t.Errorf("%s: cmd/relayd imports %v: reach them through pkg/node or pkg/admin", goos, bad)
		}
		if !slices.Contains(pkgs["cmd/relayd"].Imports, module+"pkg/admin") {
			t.Errorf("%s: cmd/relayd does not import pkg/admin: is this test still looking at the right package?", goos)
		}
		// The admin API and its client: nothing of the behaviour layer,
		// even indirectly, so a client built from it is small and the
		// documents are its own.
		if bad := forbidden(pkgs["pkg/admin"].Deps); len(bad) > 0 {
			t.Errorf("%s: pkg/admin depends on %v", goos, bad)
		}
		// The admin documents behaviour packages alias are vocabulary:
		// the standard library and the wire protocol only.
		if len(pkgs["pkg/admindoc"].Imports) == 0 {
			t.Errorf("%s: pkg/admindoc imports nothing: is this test still looking at the right package?", goos)
		}
		for _, d := range pkgs["pkg/admindoc"].Deps {
			if strings.Contains(d, ".") && d != module+"pkg/wire" {
				t.Errorf("%s: pkg/admindoc depends on %s: only the standard library and pkg/wire", goos, d)
			}
		}
		// The generic HTTP helpers know no relayd package.
		for _, d := range pkgs["pkg/httpx"].Deps {
			if strings.HasPrefix(d, module) {
				t.Errorf("%s: pkg/httpx depends on %s", goos, d)
			}
		}
	}
}
