//go:build unix

package tufrepo

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lock serializes the writers of one tree's repository (a publish and the
// origin's timestamp refresh) with an exclusive flock on TREE/-/tuf/.lock.
func lock(tree string) (func(), error) {
	_, dir, err := metaDir(tree)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tufrepo: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("tufrepo: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("tufrepo: lock: %w", err)
	}
	return func() { f.Close() }, nil
}
