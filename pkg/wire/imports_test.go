package wire

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsOnlyStdlib: both sides of the protocol import this package,
// so it must not pull anything of the repo or a module into them.
func TestImportsOnlyStdlib(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/relayd/relayd/pkg/wire" {
			t.Errorf("pkg/wire depends on %s; it may import only the standard library", p)
		}
	}
}
