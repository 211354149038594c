package server

import (
	"context"
	"net"
	"net/http"

	"github.com/relayd/relayd/pkg/object"
)

type connKey struct{}

// ConnContext is http.Server.ConnContext: it keeps each request's
// connection reachable, for coalescing.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// Coalescer is a connection that can send a response's first two writes
// with one writev(2). net/http writes a response larger than its 4 KiB
// buffer in two writes or more (the headers and the first part of the
// body, then the rest); coalesced, the first two cost one system call,
// and a small response leaves as one segment, as nginx's one writev of
// headers and body does. A body sent with sendfile gains nothing (the
// held write goes first, alone). The content port's connections are
// Coalescers (pkg/node); on others (TLS, tests' listeners) a response is
// written as net/http writes it.
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

// whole reports whether obj's bytes are all there to send (stored, or
// in memory): a response streamed from a fill in progress is not
// coalesced, so that its first bytes wait for nothing.
func whole(obj *object.Object) bool { return obj.Cache != object.Miss && obj.Cache != object.Peer }

// release pushes a coalesced response out: what net/http still buffers,
// then what the connection holds.
func release(w http.ResponseWriter, c Coalescer) {
	_ = http.NewResponseController(w).Flush()
	_ = c.Release()
}
