package atomicfile

import (
	"errors"
	"os"
	"syscall"
)

// SyncDir only checks that dir exists: Windows cannot fsync a directory
// (Go opens one read-only, and FlushFileBuffers refuses a read-only
// handle with ERROR_ACCESS_DENIED). NTFS logs a rename in its journal, so
// after a crash the name holds the old file or the new one, never a part
// (the new one's bytes were flushed before the rename); a rename made
// moments before the crash may be undone.
func SyncDir(dir string) error {
	_, err := os.Stat(dir)
	return err
}

// SyncDirIn is SyncDir for the directory dir inside root.
func SyncDirIn(root *os.Root, dir string) error {
	_, err := root.Stat(dir)
	return err
}

// Windows errors of a rename that another program's open handle blocks.
const (
	errorSharingViolation syscall.Errno = 32 // ERROR_SHARING_VIOLATION
	errorLockViolation    syscall.Errno = 33 // ERROR_LOCK_VIOLATION
)

// inUse reports whether a rename failed because another program holds
// one of the files open (or, indistinguishably, access is denied).
func inUse(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.ERROR_ACCESS_DENIED, errorSharingViolation, errorLockViolation:
		return true
	}
	return false
}
