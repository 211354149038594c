package node

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/clock"
)

// acceptAll serves ln's Accept into a channel until it fails.
func acceptAll(t testing.TB, lim *connLimit) (addr string, accepted chan net.Conn) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newLimitListener(raw, lim, zerolog.New(zerolog.NewTestWriter(t)), clock.Real{})
	t.Cleanup(func() { ln.Close() })
	accepted = make(chan net.Conn, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	return raw.Addr().String(), accepted
}

// dialFrom connects to addr from the local address ip.
func dialFrom(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedAtOnce reports whether the server closed c without a byte.
func closedAtOnce(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 1))
	return n == 0 && err != nil && !isTimeout(err)
}

// One address holds conns-per-addr connections besides its event streams;
// beyond, its new ones are closed at once while another address is still
// served, and a connection closed gives its place back. (Before, only the
// total was capped: one address could take every place.)
func TestLimitListenerPerAddr(t *testing.T) {
	t.Parallel()
	var streams atomic.Int64 // 127.0.0.2's
	lim := &connLimit{max: 100, perAddr: 3, addrStreams: func(k string) int {
		if k == "127.0.0.2" {
			return int(streams.Load())
		}
		return 0
	}}
	addr, accepted := acceptAll(t, lim)
	var mine []net.Conn
	for range 3 {
		dialFrom(t, "127.0.0.2", addr)
		mine = append(mine, <-accepted)
	}
	if !closedAtOnce(dialFrom(t, "127.0.0.2", addr)) {
		t.Fatal("a 4th connection from one address was kept; want it closed at once")
	}
	dialFrom(t, "127.0.0.3", addr)
	other := <-accepted
	other.Close()
	if lim.refused.Load() != 1 {
		t.Fatalf("refused %d, want 1", lim.refused.Load())
	}
	mine[0].Close()
	dialFrom(t, "127.0.0.2", addr)
	mine[0] = <-accepted
	// Event streams do not count against the address's cap (they have
	// events-per-addr): with one stream open, one more connection fits.
	streams.Store(1)
	dialFrom(t, "127.0.0.2", addr)
	mine = append(mine, <-accepted)
	for _, c := range mine {
		c.Close()
	}
	if lim.open.Load() != 0 || len(lim.byAddr) != 0 {
		t.Fatalf("after every close: open %d, by address %v; want none", lim.open.Load(), lim.byAddr)
	}
}

// A response whose client takes nothing ends after the stall timeout,
// through Write and through sendfile (ReadFrom of a file); a client that
// reads slowly but steadily keeps it going past the timeout. (Before,
// nothing ended a response whose client never read.)
func TestClientStallTimeout(t *testing.T) {
	t.Parallel()
	const stall = 300 * time.Millisecond
	lim := &connLimit{max: 100, stall: stall}
	addr, accepted := acceptAll(t, lim)
	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, make([]byte, 64<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, via := range []string{"Write", "ReadFrom"} {
		dialFrom(t, "127.0.0.1", addr) // never reads
		c := <-accepted
		done := make(chan error, 1)
		go func() {
			var err error
			if via == "Write" {
				for err == nil {
					_, err = c.Write(make([]byte, 1<<20))
				}
			} else {
				f, ferr := os.Open(big)
				if ferr != nil {
					done <- ferr
					return
				}
				defer f.Close()
				_, err = c.(io.ReaderFrom).ReadFrom(&io.LimitedReader{R: f, N: 64 << 20})
			}
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("%s to a client taking nothing: %v, want a deadline error", via, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s to a client taking nothing still blocked after 30s (stall timeout %s)", via, stall)
		}
		c.Close()
	}
	// A slow reader: 8 MiB through a client taking 256 KiB every 50ms
	// lasts well past the stall timeout and completes.
	cl := dialFrom(t, "127.0.0.1", addr)
	c := <-accepted
	defer c.Close()
	got := make(chan int64, 1)
	go func() {
		var n int64
		buf := make([]byte, 256<<10)
		for n < 8<<20 {
			m, err := io.ReadFull(cl, buf)
			n += int64(m)
			if err != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		got <- n
	}()
	f, err := os.Open(big)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	if n, err := c.(io.ReaderFrom).ReadFrom(&io.LimitedReader{R: f, N: 8 << 20}); err != nil || n != 8<<20 {
		t.Fatalf("sendfile to a slow but steady client: %d, %v after %s", n, err, time.Since(start))
	}
	if n := <-got; n != 8<<20 {
		t.Fatalf("client got %d bytes, want %d", n, 8<<20)
	}
	if time.Since(start) < stall {
		t.Logf("the slow copy took %s, under the stall timeout: it proves less", time.Since(start))
	}
}

// BenchmarkCountedWrite is the hit path's last step over loopback: 1 MiB
// through Write (user-space copy) and through ReadFrom of a file
// (sendfile), with and without the client stall timeout.
func BenchmarkCountedWrite(b *testing.B) {
	big := filepath.Join(b.TempDir(), "big")
	if err := os.WriteFile(big, make([]byte, 1<<20), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, stall := range []time.Duration{0, DefaultClientStallTimeout} {
		for _, via := range []string{"Write", "ReadFrom"} {
			b.Run(fmt.Sprintf("%s/stall=%s", via, stall), func(b *testing.B) {
				lim := &connLimit{max: 100, stall: stall}
				addr, accepted := acceptAll(b, lim)
				cl, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				defer cl.Close()
				go func() { _, _ = io.Copy(io.Discard, cl) }()
				c := <-accepted
				defer c.Close()
				f, err := os.Open(big)
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				buf := make([]byte, 32<<10)
				b.SetBytes(1 << 20)
				b.ResetTimer()
				for b.Loop() {
					if via == "Write" {
						for range 32 {
							if _, err := c.Write(buf); err != nil {
								b.Fatal(err)
							}
						}
						continue
					}
					if _, err := f.Seek(0, io.SeekStart); err != nil {
						b.Fatal(err)
					}
					if _, err := c.(io.ReaderFrom).ReadFrom(&io.LimitedReader{R: f, N: 1 << 20}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// A deadline of someone else's (an event stream's) rules over the stall
// timeout; clearing it, as net/http does after a TLS handshake, gives the
// stall timeout back (before, a TLS connection never had one).
func TestClientStallTimeoutAfterAClearedDeadline(t *testing.T) {
	t.Parallel()
	lim := &connLimit{max: 100, stall: 300 * time.Millisecond}
	addr, accepted := acceptAll(t, lim)
	dialFrom(t, "127.0.0.1", addr) // never reads
	c := <-accepted
	defer c.Close()
	_ = c.SetWriteDeadline(time.Now().Add(time.Hour))
	_ = c.SetDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		var err error
		for err == nil {
			_, err = c.Write(make([]byte, 1<<20))
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write to a client taking nothing: %v, want a deadline error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the stall timeout did not come back after the deadline was cleared")
	}
}
