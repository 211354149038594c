package node

import (
	"net"
	"net/http"
	"sync"
)

// conns tracks connections that have not sent a request yet. At shutdown
// they are closed at once: http.Server.Shutdown would wait up to 5 s for
// them (clients such as Go's transport open spare connections that never
// carry a request), and nothing is in flight on them.
type conns struct {
	mu    sync.Mutex
	fresh map[net.Conn]struct{}
}

func newConns() *conns { return &conns{fresh: map[net.Conn]struct{}{}} }

// track is http.Server.ConnState.
func (c *conns) track(conn net.Conn, state http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if state == http.StateNew {
		c.fresh[conn] = struct{}{}
	} else {
		delete(c.fresh, conn)
	}
}

// closeFresh closes every connection still waiting for its first request.
func (c *conns) closeFresh() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for conn := range c.fresh {
		_ = conn.Close()
		delete(c.fresh, conn)
	}
}
