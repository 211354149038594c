package store

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// preallocate reserves size bytes for f on the file system, so that a full
// disk is found before any byte is sent. A file system without fallocate
// (EOPNOTSUPP) is not an error: the writes find a full disk instead.
func preallocate(f *os.File, size int64) error {
	if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
		return err
	}
	return nil
}
