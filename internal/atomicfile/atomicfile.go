// Package atomicfile replaces small files whole: a reader, or the file
// system after a crash, sees the old content or the new one, never a part.
// The bytes go to a temporary file in the same directory, which is
// fsynced and renamed over the file; then the directory is fsynced so the
// rename itself survives a crash.
//
// It is for small documents written in one piece (a catalog, an agent's
// state). It does not stream, and it does not lock: of two concurrent
// writers of one path, the last rename wins. Standard library only.
package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile replaces path with b, mode perm, creating its directory
// (0755) if needed. On error the file is as it was and no temporary file
// is left.
func WriteFile(path string, b []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := write(f, b, perm); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(dir)
}

// write fills the temporary file, makes it durable and closes it.
func write(f *os.File, b []byte, perm fs.FileMode) error {
	_, err := f.Write(b)
	if err == nil {
		err = f.Chmod(perm) // CreateTemp makes it 0600
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

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
