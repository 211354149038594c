// The client-stall timeout: a response whose client takes nothing for a
// while is ended, however long the response as a whole takes.
package node

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// DefaultClientStallTimeout is the default client-stall-timeout.
const DefaultClientStallTimeout = 60 * time.Second

// stallWriter is the write side of a content connection under a stall
// timeout: each write gets a deadline of stall from now (refreshed at
// most every stall/16, which keeps it cheap on the hit path), and a
// deadline reached with some bytes sent is progress, so the write goes
// on. Once someone sets a deadline of their own (an event stream taken
// over from the server), theirs rule; clearing it (what net/http does
// after a TLS handshake it bounded) gives the rule back to the stall
// timeout.
type stallWriter struct {
	stall  time.Duration // 0: none
	manual atomic.Bool
	last   atomic.Int64 // when the deadline was last set (Unix ns; 0: not set by us)
}

// extend moves the write deadline of c to stall from now when due.
func (s *stallWriter) extend(c interface{ SetWriteDeadline(time.Time) error }, force bool) {
	now := time.Now()
	if last := s.last.Load(); force || last == 0 || now.Sub(time.Unix(0, last)) >= s.stall/16 {
		s.last.Store(now.UnixNano())
		_ = c.SetWriteDeadline(now.Add(s.stall))
	}
}

func (s *stallWriter) active() bool { return s.stall > 0 && !s.manual.Load() }

// timedOutWithProgress: a write that reached its deadline having sent n
// bytes made progress, and may go on.
func timedOutWithProgress(n int64, err error) bool {
	return n > 0 && errors.Is(err, os.ErrDeadlineExceeded)
}

// write writes p, extending the deadline while the client takes bytes.
func (c *countedTCP) write(p []byte) (int, error) {
	if !c.stall.active() {
		return c.TCPConn.Write(p)
	}
	done := 0
	for {
		c.stall.extend(c.TCPConn, false)
		n, err := c.TCPConn.Write(p[done:])
		done += n
		if err == nil || !timedOutWithProgress(int64(n), err) || c.stall.manual.Load() {
			return done, err
		}
		c.stall.extend(c.TCPConn, true)
	}
}

// writev writes bufs with one writev(2) (more when the socket takes part
// of them), extending the deadline like write.
func (c *countedTCP) writev(bufs *net.Buffers) (int64, error) {
	if !c.stall.active() {
		return bufs.WriteTo(c.TCPConn)
	}
	var total int64
	for {
		c.stall.extend(c.TCPConn, false)
		n, err := bufs.WriteTo(c.TCPConn)
		total += n
		if err == nil || !timedOutWithProgress(n, err) || c.stall.manual.Load() {
			return total, err
		}
		c.stall.extend(c.TCPConn, true)
	}
}

// readFrom keeps sendfile(2) for files (the reader tracks what was sent,
// so a deadline reached with progress goes on); other readers are copied
// through Write.
func (c *countedTCP) readFrom(r io.Reader) (int64, error) {
	if !c.stall.active() {
		return c.TCPConn.ReadFrom(r)
	}
	file := false
	switch v := r.(type) {
	case *os.File:
		file = true
	case *io.LimitedReader:
		_, file = v.R.(*os.File)
	}
	if !file {
		return io.Copy(struct{ io.Writer }{c}, r)
	}
	var total int64
	for {
		c.stall.extend(c.TCPConn, false)
		n, err := c.TCPConn.ReadFrom(r)
		total += n
		if err == nil || !timedOutWithProgress(n, err) || c.stall.manual.Load() {
			return total, err
		}
		c.stall.extend(c.TCPConn, true)
	}
}

// SetWriteDeadline sets a deadline of the caller's, which rules instead
// of the stall timeout until it is cleared (the zero time).
func (c *countedTCP) SetWriteDeadline(t time.Time) error {
	c.stall.manual.Store(!t.IsZero())
	c.stall.last.Store(0)
	return c.TCPConn.SetWriteDeadline(t)
}

// SetDeadline is SetWriteDeadline for both directions.
func (c *countedTCP) SetDeadline(t time.Time) error {
	c.stall.manual.Store(!t.IsZero())
	c.stall.last.Store(0)
	return c.TCPConn.SetDeadline(t)
}
