package server

import (
	"context"
	"net"
	"net/http"
)

type connKey struct{}

// ConnContext is http.Server.ConnContext: it keeps each request's
// connection reachable, for coalescing.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// coalesceSmall is the largest response body whose writes are coalesced.
const coalesceSmall = 64 << 10

// Coalescer is a connection that can send a response's first two writes
// with one writev(2). net/http writes a small response in two writes
// (its buffer is 4 KiB: the headers and the first part of the body, then
// the rest); coalesced, they cost one system call and leave as one
// segment, as nginx's one writev of headers and body does. The content
// port's connections are Coalescers (pkg/node); on others (TLS, tests'
// listeners) a small response is written as net/http writes it.
type Coalescer interface {
	// Coalesce holds the connection's next write until the one after
	// it (or Release), and sends both in one system call.
	Coalesce()
	// Release sends a write still held and ends coalescing.
	Release() error
}

// coalescer returns the request's connection as a Coalescer, or nil.
func coalescer(r *http.Request) Coalescer {
	c, _ := r.Context().Value(connKey{}).(Coalescer)
	return c
}

// release pushes a coalesced response out: what net/http still buffers,
// then what the connection holds.
func release(w http.ResponseWriter, c Coalescer) {
	_ = http.NewResponseController(w).Flush()
	_ = c.Release()
}
