package node

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/origin"
	"github.com/relayd/relayd/pkg/server"
	"github.com/relayd/relayd/pkg/wire"
)

// dataSegments is how many segments with data the socket has sent.
func dataSegments(t *testing.T, c net.Conn) uint32 {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	var serr error
	if err := rc.Control(func(fd uintptr) { info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	return info.Data_segs_out
}

// A small hit's headers and body leave in one segment (net/http writes
// them in two: one writev) on the content port's connections, with and
// without a stall timeout; larger ones (64 KiB, 1 MiB copied: the first
// two of their writes coalesced) arrive whole and in order.
func TestSmallResponseLeavesInOneSegment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sizes := map[string]int{"4k": 4 << 10, "1k": 1 << 10, "64k": 64 << 10, "1m": 1 << 20}
	// 251 bytes repeated: a byte out of place shows.
	pattern := make([]byte, 251)
	for i := range pattern {
		pattern[i] = byte(i)
	}
	files := map[string][]byte{}
	for name, n := range sizes {
		files[name] = bytes.Repeat(pattern, n/len(pattern)+1)[:n]
		if err := os.WriteFile(filepath.Join(dir, name), files[name], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o, err := origin.New(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	log := zerolog.New(zerolog.NewTestWriter(t))
	for _, stall := range []time.Duration{0, time.Minute} {
		t.Run(fmt.Sprint("stall=", stall), func(t *testing.T) {
			raw, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			conns := make(chan net.Conn, 1)
			srv := &http.Server{
				Handler:     server.NewContent(server.ContentConfig{Source: o, Relays: func() wire.Relays { return wire.Relays{} }}, log),
				ConnContext: server.ConnContext,
				ConnState: func(c net.Conn, s http.ConnState) {
					if s == http.StateNew {
						conns <- c
					}
				},
			}
			go func() { _ = srv.Serve(newLimitListener(raw, &connLimit{max: 10, stall: stall}, log, clock.Real{})) }()
			defer srv.Close()
			c, err := net.Dial("tcp", raw.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			get := func(name string) {
				t.Helper()
				if _, err := fmt.Fprintf(c, "GET /%s HTTP/1.1\r\nHost: relay\r\n\r\n", name); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, files[name]) {
					t.Fatalf("GET /%s: %d, %d bytes (want %d, the file's), %v", name, resp.StatusCode, len(body), sizes[name], err)
				}
			}
			get("4k")
			sc := <-conns
			for _, tc := range []struct {
				name string
				segs uint32
			}{{"4k", 1}, {"1k", 1}, {"4k", 1}} {
				before := dataSegments(t, sc)
				get(tc.name)
				if got := dataSegments(t, sc) - before; got != tc.segs {
					t.Errorf("GET /%s left in %d segments, want %d", tc.name, got, tc.segs)
				}
			}
			// Larger ones: how many segments depends on the windows.
			get("64k")
			get("1m")
			get("4k")
		})
	}
}

// Coalescing costs no allocation per response (its buffer is pooled, its
// writev's vector kept in the connection).
func TestCoalescingAllocatesNothing(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	client, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	go func() { _, _ = io.Copy(io.Discard, client) }()
	a, err := raw.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := countConn(a, &connLimit{}, func() {}).(*countedTCP)
	defer c.Close()
	head, tail := make([]byte, 4096), make([]byte, 300)
	n := testing.AllocsPerRun(200, func() {
		c.Coalesce()
		if _, err := c.Write(head); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(tail); err != nil {
			t.Fatal(err)
		}
		if err := c.Release(); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("%.0f allocations per coalesced response, want 0", n)
	}
}
