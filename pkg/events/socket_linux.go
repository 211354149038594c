package events

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// rawConn finds the socket under conn: a TCP connection, or one wrapped
// by TLS (or anything else with NetConn).
func rawConn(conn net.Conn) (syscall.RawConn, bool) {
	for range 4 {
		if sc, ok := conn.(syscall.Conn); ok {
			rc, err := sc.SyscallConn()
			return rc, err == nil
		}
		w, ok := conn.(interface{ NetConn() net.Conn })
		if !ok {
			return nil, false
		}
		conn = w.NetConn()
	}
	return nil, false
}

// unsentBytes is how many bytes conn's socket holds that the peer has not
// acknowledged (SIOCOUTQ).
func unsentBytes(conn net.Conn) (int, bool) {
	rc, ok := rawConn(conn)
	if !ok {
		return 0, false
	}
	var n int
	var ierr error
	if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil || ierr != nil {
		return 0, false
	}
	return n, true
}

// setSendBuffer asks for a kernel send buffer of n bytes on conn's socket;
// best effort.
func setSendBuffer(conn net.Conn, n int) {
	if rc, ok := rawConn(conn); ok {
		_ = rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, n) })
	}
}
