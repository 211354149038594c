// Package atomicfile replaces small files whole: a reader, or the file
// system after a crash, sees the old content or the new one, never a part.
// The bytes go to a temporary file in the same directory, which is
// fsynced and renamed over the file; then the directory is fsynced so the
// rename itself survives a crash.
//
// It is for small documents written in one piece (a catalog, an agent's
// state). It does not stream, and it does not lock: of two concurrent
// writers of one path, the last rename wins. Standard library only.
//
// RenameIn and SyncDirIn are the same steps for a caller that writes the
// temporary file itself, inside an os.Root (the agent's downloads).
//
// On Windows a rename replaces the file atomically too: os.Rename is
// MoveFileEx with MOVEFILE_REPLACE_EXISTING, and os.Root's Rename sets
// FILE_RENAME_REPLACE_IF_EXISTS. Two things differ there (sync_windows.go):
// a directory cannot be fsynced, so SyncDir only checks that it exists,
// and a file another program holds open cannot be replaced, so a rename is
// retried for about two seconds (virus scanners and indexers open files
// briefly) before it fails with ErrInUse.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// ErrInUse is wrapped by the error of a rename that another program kept
// from happening by holding a file open, after retrying for about two
// seconds. Only Windows refuses such renames (most programs open files
// without FILE_SHARE_DELETE); Windows also says "access denied" for a file
// that is merely read-only, hence the "or".
var ErrInUse = errors.New("atomicfile: file in use by another program, or access denied")

// WriteFile replaces path with b, mode perm, creating its directory
// (0755) if needed. On error the file is as it was and no temporary file
// is left.
func WriteFile(path string, b []byte, perm fs.FileMode) error {
	if err := WriteFileNoDirSync(path, b, perm); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// WriteFileNoDirSync is WriteFile without the final fsync of the
// directory: for a writer of many files in one directory, which calls
// SyncDir once after the last (a crash before that may lose a rename,
// never expose a part of a file).
func WriteFileNoDirSync(path string, b []byte, perm fs.FileMode) error {
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
	if err := retry(func() error { return os.Rename(tmp, path) }, inUse, time.Sleep); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// RenameIn renames oldname to newname inside root, replacing newname
// atomically if it exists. A rename another program blocks is retried
// (Windows); the error then wraps ErrInUse.
func RenameIn(root *os.Root, oldname, newname string) error {
	return retry(func() error { return root.Rename(oldname, newname) }, inUse, time.Sleep)
}

// renameDelays are the waits between the attempts of a rename another
// program blocks: 2.1 s in all, about what the go command allows on
// Windows (cmd/internal/robustio).
var renameDelays = []time.Duration{
	5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond,
	80 * time.Millisecond, 160 * time.Millisecond, 320 * time.Millisecond,
	500 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond,
}

// retry runs op until it succeeds or fails with an error transient does
// not accept, sleeping renameDelays between attempts. When they are spent,
// the last error is returned wrapping ErrInUse.
func retry(op func() error, transient func(error) bool, sleep func(time.Duration)) error {
	err := op()
	for _, d := range renameDelays {
		if err == nil || !transient(err) {
			return err
		}
		sleep(d)
		err = op()
	}
	if err != nil && transient(err) {
		return fmt.Errorf("%w: %w", ErrInUse, err)
	}
	return err
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

// WriteFiles writes many new files into dir (name → bytes, mode perm),
// each atomically, with one flush to disk for all of them instead of one
// per file: every temporary file is written, then all are made durable
// (one syncfs on Linux, an fsync each elsewhere), then each is renamed
// into place and the directory is fsynced once. A reader sees, for each
// name, the old file or the new one. On error, no temporary file is left;
// files renamed before the error stay. syncfs flushes every dirty page of
// the file system, other programs' too: it pays off for many small files
// (a TUF repository's bins), not beside a heavy writer.
func WriteFiles(dir string, files map[string][]byte, perm fs.FileMode) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmps := make(map[string]*os.File, len(files))
	defer func() {
		for _, f := range tmps {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	for name, b := range files {
		f, err := os.CreateTemp(dir, "."+name+".tmp-*")
		if err != nil {
			return err
		}
		tmps[name] = f
		if _, err := f.Write(b); err != nil {
			return err
		}
		if err := f.Chmod(perm); err != nil {
			return err
		}
	}
	if err := syncFiles(dir, tmps); err != nil {
		return err
	}
	for name, f := range tmps {
		if err := f.Close(); err != nil {
			return err
		}
		if err := retry(func() error { return os.Rename(f.Name(), filepath.Join(dir, name)) }, inUse, time.Sleep); err != nil {
			return err
		}
		delete(tmps, name)
	}
	return SyncDir(dir)
}
