package node

import (
	"io"
	"net"
	"sync"

	"github.com/relayd/relayd/pkg/server"
)

// maxHeld is the largest write a coalescing connection holds back:
// net/http's buffer of a connection is 4 KiB, so its first write of a
// response is at most that unless the headers alone are larger.
const maxHeld = 8 << 10

var heldBuffers = sync.Pool{New: func() any { b := make([]byte, 0, maxHeld); return &b }}

// writeHold is a content connection's coalescing state. Only the
// connection's own goroutine (net/http's, which runs the handler) writes
// to it or coalesces, so it needs no lock.
type writeHold struct {
	on   bool
	held *[]byte     // the write held back; nil: none
	vec  [2][]byte   // the writev's buffers
	bufs net.Buffers // over vec (WriteTo consumes it); a field, so no allocation
}

var _ server.Coalescer = (*countedTCP)(nil)

// Coalesce holds the next write back until the one after it.
func (c *countedTCP) Coalesce() { c.hold.on = true }

// Release writes what is held and ends coalescing.
func (c *countedTCP) Release() error {
	c.hold.on = false
	if c.hold.held == nil {
		return nil
	}
	_, err := c.writeHeld(nil)
	return err
}

// Write writes p; while coalescing, the first write is held back and
// leaves with the second.
func (c *countedTCP) Write(p []byte) (int, error) {
	if c.hold.on {
		if c.hold.held == nil && len(p) <= maxHeld {
			b := heldBuffers.Get().(*[]byte)
			*b = append((*b)[:0], p...)
			c.hold.held = b
			return len(p), nil
		}
		c.hold.on = false
	}
	if c.hold.held != nil {
		return c.writeHeld(p)
	}
	return c.write(p)
}

// ReadFrom sends what is held first (sendfile cannot carry it along).
func (c *countedTCP) ReadFrom(r io.Reader) (int64, error) {
	c.hold.on = false
	if c.hold.held != nil {
		if _, err := c.writeHeld(nil); err != nil {
			return 0, err
		}
	}
	return c.readFrom(r)
}

// writeHeld writes the held bytes and then p with one writev(2), and
// returns how many bytes of p were written.
func (c *countedTCP) writeHeld(p []byte) (int, error) {
	b := c.hold.held
	c.hold.held = nil
	defer heldBuffers.Put(b)
	c.hold.vec = [2][]byte{*b, p}
	c.hold.bufs = c.hold.vec[:]
	n, err := c.writev(&c.hold.bufs)
	c.hold.vec = [2][]byte{} // p is the caller's
	return int(max(n-int64(len(*b)), 0)), err
}
