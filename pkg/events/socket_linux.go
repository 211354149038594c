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

// peerClosed reports whether the client of conn has closed its side (or
// sent something, which a stream's client never does once its request
// is in: a TLS close_notify, say): ok is false where it cannot be told.
// It peeks without waiting.
func peerClosed(conn net.Conn) (closed, ok bool) {
	rc, ok := rawConn(conn)
	if !ok {
		return false, false
	}
	var rerr error
	buf := make([]byte, 1)
	if err := rc.Read(func(fd uintptr) bool {
		_, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return true // never wait
	}); err != nil {
		return false, false
	}
	return rerr != unix.EAGAIN, true
}
