package proctest

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
)

// Build compiles the main package pkg (an import path such as
// "github.com/relayd/relayd/cmd/relayd") into dir and returns the
// binary's path (dir/<last element of pkg>). It is meant for a TestMain:
// build once, start many times. The compiler's output goes to stderr.
func Build(dir, pkg string) (string, error) {
	bin := filepath.Join(dir, path.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %w", pkg, err)
	}
	return bin, nil
}
