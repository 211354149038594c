package server

import "golang.org/x/sys/unix"

// setCork sets (v=1) or clears (v=0) TCP_CORK on the socket fd.
func setCork(fd uintptr, v int) error {
	return unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, v)
}
