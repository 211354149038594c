package server

import (
	"context"
	"net"
	"net/http"
	"syscall"
)

type connKey struct{}

// ConnContext is http.Server.ConnContext: it keeps each request's
// connection reachable, for corking.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// corkSmall is the largest response body sent corked.
const corkSmall = 64 << 10

// cork holds back partial segments on the request's TCP connection until
// the returned function uncorks it. net/http writes a small response in
// two writes (its buffer is 4 KiB: headers plus the first part of the
// body, then the rest); corked, they leave as one segment, which halves
// the network stack's work per small hit — what nginx gets from
// tcp_nopush. It is a no-op where the connection is not TCP, and on
// systems without TCP_CORK (cork_other.go).
func cork(r *http.Request) func() {
	c, ok := r.Context().Value(connKey{}).(syscall.Conn)
	if !ok {
		return func() {}
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return func() {}
	}
	set := func(v int) bool {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = setCork(fd, v)
		}); err != nil || serr != nil {
			return false
		}
		return true
	}
	if !set(1) {
		return func() {}
	}
	return func() { set(0) }
}
