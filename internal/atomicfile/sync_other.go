//go:build !windows

package atomicfile

import "os"

// SyncDir fsyncs the directory dir, so that a file created, renamed or
// removed in it stays so after a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// SyncDirIn is SyncDir for the directory dir inside root.
func SyncDirIn(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// inUse: nothing but Windows refuses to rename an open file.
func inUse(error) bool { return false }
