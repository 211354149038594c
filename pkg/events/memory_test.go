package events

import (
	"bytes"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/wire"
)

// maxStreamBytes bounds the live heap the hub and its stream writer
// keep for one idle attached stream, its Client and the strings it
// holds included, its connection not (net's, the same whoever holds it).
// Measured at 490 bytes; it was 875 with a map of the kinds sent, a
// channel per subscriber and a closure per attached one.
const maxStreamBytes = 600

// TestStreamLiveBytes attaches real loopback connections, sends each an
// event and a ping, and measures the live heap that holding them costs
// (issue 18: what an idle stream costs beside its socket). Not parallel:
// it reads the process's heap.
func TestStreamLiveBytes(t *testing.T) {
	const n = 1000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	servers, clients := make([]net.Conn, n), make([]net.Conn, n)
	bare := liveHeap()
	for i := range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		servers[i], clients[i] = s, c
	}
	defer func() {
		for i := range n {
			servers[i].Close()
			clients[i].Close()
		}
	}()
	h := NewHub()
	h.Publish(wire.KindCatalog, []byte(`{"generation":1}`))
	closing := make(chan struct{})
	defer close(closing)
	st := h.Streams(time.Hour, time.Second, closing)
	before := liveHeap()
	t.Logf("live heap per accepted TCP connection (net's, either end): %d bytes", (int64(before)-int64(bare))/(2*n))
	for i, s := range servers {
		sub, err := h.Join(Client{ID: fmt.Sprintf("agent-%05d", i), Addr: s.RemoteAddr().String(), Since: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		st.Attach(s, sub)
	}
	h.Publish(wire.KindCatalog, []byte(`{"generation":2}`))
	buf := make([]byte, 256)
	for _, c := range clients { // each has generation 2 (newest only): idle now
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var got []byte
		for !bytes.Contains(got, []byte(`{"generation":2}`)) {
			k, err := c.Read(buf)
			if err != nil {
				t.Fatalf("read: %v (got %q)", err, got)
			}
			got = append(got, buf[:k]...)
		}
	}
	after := liveHeap()
	if st.Len() != n {
		t.Fatalf("%d streams attached, want %d", st.Len(), n)
	}
	per := (int64(after) - int64(before)) / n
	t.Logf("live heap per idle attached stream: %d bytes", per)
	if per > maxStreamBytes {
		t.Errorf("an idle attached stream keeps %d bytes of heap, want at most %d", per, maxStreamBytes)
	}
	runtime.KeepAlive(servers)
	runtime.KeepAlive(clients)
}

func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
