package events

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/wire"
)

// pair returns the two ends of a real loopback TCP connection.
func pair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		done <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-done
	t.Cleanup(func() { client.Close(); server.Close() })
	return server, client
}

// readEvent reads the next event from a stream, failing after 5s.
func readEvent(t *testing.T, r *Reader, c net.Conn) Event {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	ev, err := r.Next()
	if err != nil {
		t.Fatalf("read event: %v", err)
	}
	return ev
}

func TestStreamsFanOutPingReplaceAndClose(t *testing.T) {
	h := NewHub()
	h.Publish(wire.KindCatalog, []byte(`{"generation":1}`))
	closing := make(chan struct{})
	st := h.Streams(50*time.Millisecond, time.Second, closing)
	const n = 40
	var readers []*Reader
	var clients []net.Conn
	for i := range n {
		srv, cli := pair(t)
		st.Attach(srv, h.Subscribe(Client{ID: "agent-" + string(rune('A'+i))}))
		readers, clients = append(readers, NewReader(bufio.NewReader(cli))), append(clients, cli)
	}
	for i, r := range readers {
		if ev := readEvent(t, r, clients[i]); ev.Kind != wire.KindCatalog || string(ev.Data) != `{"generation":1}` {
			t.Fatalf("stream %d: first event %+v, want the current generation", i, ev)
		}
	}
	h.Publish(wire.KindCatalog, []byte(`{"generation":2}`))
	for i, r := range readers {
		if ev := readEvent(t, r, clients[i]); string(ev.Data) != `{"generation":2}` {
			t.Fatalf("stream %d: %+v, want generation 2", i, ev)
		}
	}
	// Pings flow on an idle stream (Activity sees the comment lines).
	pinged := make(chan struct{}, 1)
	readers[0].Activity = func() {
		select {
		case pinged <- struct{}{}:
		default:
		}
	}
	go func() { _ = clients[0].SetReadDeadline(time.Now().Add(5 * time.Second)); _, _ = readers[0].Next() }()
	select {
	case <-pinged:
	case <-time.After(5 * time.Second):
		t.Fatal("no ping within 5s on an idle stream (heartbeat 50ms)")
	}
	// A new stream with a known id replaces the old one.
	srv, cli := pair(t)
	st.Attach(srv, h.Subscribe(Client{ID: "agent-B"}))
	_ = clients[1].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(clients[1]); err != nil {
		t.Fatalf("replaced stream: %v, want EOF", err)
	}
	if got := st.Len(); got != n {
		t.Fatalf("%d streams attached after a replacement, want %d", got, n)
	}
	if a, _ := h.Count(); a != n {
		t.Fatalf("hub counts %d agents, want %d", a, n)
	}
	_ = readEvent(t, NewReader(cli), cli)
	// A subscriber that went away is dropped at a ping.
	clients[2].Close()
	deadline := time.Now().Add(5 * time.Second)
	for st.Len() != n-1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d streams 5s after a client closed, want %d", st.Len(), n-1)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(closing)
	_ = clients[3].SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(clients[3])
	if err != nil || strings.Contains(string(b), "event:") {
		t.Fatalf("after closing: read %q, %v; want EOF", b, err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		a, _ := h.Count()
		if a == 0 && st.Len() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hub counts %d agents, %d streams attached 5s after closing, want 0", a, st.Len())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Attaching after closing closes at once.
	srv, cli = pair(t)
	st.Attach(srv, h.Subscribe(Client{ID: "late"}))
	_ = cli.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(cli); err != nil || len(b) != 0 {
		t.Fatalf("late attach: read %q, %v; want EOF", b, err)
	}
}

// Relays of different groups may share a node name (the host name by
// default), and an agent may call itself that too: none replaces another.
func TestStreamsKeepSameNamesOfDifferentKinds(t *testing.T) {
	h := NewHub()
	closing := make(chan struct{})
	defer close(closing)
	st := h.Streams(time.Hour, time.Second, closing)
	for _, c := range []Client{{ID: "web-1", Relay: true, Group: "branch-a"}, {ID: "web-1", Relay: true, Group: "branch-b"}, {ID: "web-1"}} {
		srv, _ := pair(t)
		st.Attach(srv, h.Subscribe(c))
	}
	if got := st.Len(); got != 3 {
		t.Fatalf("%d streams attached, want all 3", got)
	}
}
