//go:build unix

package object

import (
	"os"
	"syscall"
)

// openPrivate opens a file for sendfile: a descriptor of its own (sendfile
// reads from the descriptor's offset). os.Open would try to register a
// regular file with the network poller and undo it (four fcntl and an
// epoll_ctl on every large hit); a descriptor opened here and handed to
// os.NewFile costs openat and one fcntl.
func openPrivate(path string) (*os.File, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
}
