//go:build linux

// Stream tests that need Linux: clients bound to 127.0.0.2 and .3 (the
// whole 127/8 is loopback there), a small receive buffer, SIOCOUTQ.
package events

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/relayd/relayd/pkg/wire"
)

// pairFrom is pair with the client bound to local (a loopback address).
func pairFrom(t *testing.T, local string, rcvbuf int) (server, client net.Conn) {
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
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	if rcvbuf > 0 {
		// Set before connect, so the window the server sees is small.
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf) })
		}
	}
	client, err = d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-done
	t.Cleanup(func() { client.Close(); server.Close() })
	return server, client
}

// A stream is replaced only by one with the same identity from the same
// address, and is told why before it is closed; the same id from another
// address (a stranger who learnt it) keeps both.
func TestStreamsReplaceOnlyFromTheSameAddress(t *testing.T) {
	t.Parallel()
	h := NewHub()
	h.Publish(wire.KindCatalog, []byte(`{"generation":1}`))
	closing := make(chan struct{})
	defer close(closing)
	st := h.Streams(time.Hour, 5*time.Second, closing)
	attach := func(local string, c Client) (*Reader, net.Conn) {
		srv, cli := pairFrom(t, local, 0)
		c.Addr = srv.RemoteAddr().String()
		sub, err := h.Join(c)
		if err != nil {
			t.Fatal(err)
		}
		st.Attach(srv, sub)
		r := NewReader(cli)
		if ev := readEvent(t, r, cli); ev.Kind != wire.KindCatalog {
			t.Fatalf("first event %+v", ev)
		}
		return r, cli
	}
	for _, c := range []Client{{ID: "agent-7"}, {ID: "web-1", Relay: true, Group: "branch"}} {
		realR, realC := attach("127.0.0.1", c)
		_, _ = attach("127.0.0.2", c) // the stranger
		if got := st.Len(); got != 2 {
			t.Fatalf("%+v: %d streams after the same id from another address, want both", c, got)
		}
		// The real one still gets events.
		want := `{"group":"` + c.ID + `"}`
		h.Publish(wire.KindRelays, []byte(want))
		for {
			ev := readEvent(t, realR, realC)
			if ev.Kind == wire.KindRelays && string(ev.Data) == want {
				break
			}
			if ev.Kind != wire.KindRelays {
				t.Fatalf("%+v: the real stream got %+v after the stranger came, want the relays event", c, ev)
			}
		}
		// The same identity from the real one's address replaces it.
		_, _ = attach("127.0.0.1", c)
		ev := readEvent(t, realR, realC)
		var why wire.Replaced
		if ev.Kind != wire.KindReplaced || json.Unmarshal(ev.Data, &why) != nil || why.Reason == "" {
			t.Fatalf("%+v: replaced stream got %+v (%s), want a %q event with a reason", c, ev, ev.Data, wire.KindReplaced)
		}
		_ = realC.SetReadDeadline(time.Now().Add(5 * time.Second))
		if rest, err := io.ReadAll(realC); err != nil || len(rest) != 0 {
			t.Fatalf("%+v: after the replaced event: %q, %v; want EOF", c, rest, err)
		}
		if got := st.Len(); got != 2 {
			t.Fatalf("%+v: %d streams after a replacement, want 2", c, got)
		}
		closeAll(st)
	}
	if got := st.Stats().Replaced; got != 2 {
		t.Fatalf("Stats().Replaced = %d, want 2", got)
	}
	// The relay's identity was claimed from two addresses (when the
	// stranger came, and again when the real one reconnected while the
	// stranger held it) and twice from one (the replacement); agents are
	// not listed.
	cs := st.Conflicts()
	if len(cs) != 2 || cs[0].Identity != "branch/web-1" || strings.Join(cs[0].Addrs, " ") != "127.0.0.1" || cs[0].Count != 1 ||
		strings.Join(cs[1].Addrs, " ") != "127.0.0.1 127.0.0.2" || cs[1].Count != 2 {
		t.Fatalf("Conflicts() = %+v", cs)
	}
}

// A relay that reconnects after closing its stream (the parent has not
// noticed yet) replaces it without being taken for a second relay.
func TestStreamsReconnectIsNoConflict(t *testing.T) {
	t.Parallel()
	h := NewHub()
	closing := make(chan struct{})
	defer close(closing)
	st := h.Streams(time.Hour, 5*time.Second, closing)
	c := Client{ID: "web-1", Relay: true, Group: "branch"}
	srv, cli := pairFrom(t, "127.0.0.1", 0)
	c.Addr = srv.RemoteAddr().String()
	if n := st.Attach(srv, h.Subscribe(c)); n != 0 {
		t.Fatalf("first stream: Attach = %d", n)
	}
	cli.Close()
	eventually(t, "the close to reach the server's socket", func() bool { closed, _ := peerClosed(srv); return closed })
	srv2, _ := pairFrom(t, "127.0.0.1", 0)
	if n := st.Attach(srv2, h.Subscribe(c)); n != 0 {
		t.Fatalf("reconnect after a close: Attach = %d, want 0 (no conflict)", n)
	}
	srv3, _ := pairFrom(t, "127.0.0.1", 0)
	if n := st.Attach(srv3, h.Subscribe(c)); n != 1 {
		t.Fatalf("a second relay while the first is connected: Attach = %d, want 1", n)
	}
	if cs := st.Conflicts(); len(cs) != 1 || st.Stats().Replaced != 2 {
		t.Fatalf("conflicts %+v, %d replaced; want 1 conflict of 2 replacements", cs, st.Stats().Replaced)
	}
}

// closeAll detaches every stream (test helper).
func closeAll(st *Streams) {
	st.mu.Lock()
	subs := make([]*Sub, 0, len(st.conns))
	for sub := range st.conns {
		subs = append(subs, sub)
	}
	st.mu.Unlock()
	for _, sub := range subs {
		st.detach(sub)
	}
}

// A client that never reads is dropped within a few heartbeats once what
// was sent to it stops being taken, although every write still fits the
// socket buffers (no write deadline fires); a client that reads, on the
// same heartbeat, stays.
func TestStreamsDropClientThatDoesNotRead(t *testing.T) {
	t.Parallel()
	h := NewHub()
	closing := make(chan struct{})
	defer close(closing)
	const heartbeat = 50 * time.Millisecond
	st := h.Streams(heartbeat, time.Minute, closing)

	deafSrv, deaf := pairFrom(t, "127.0.0.2", 4096)
	st.Attach(deafSrv, h.Subscribe(Client{ID: "deaf", Addr: deafSrv.RemoteAddr().String()}))
	liveSrv, live := pairFrom(t, "127.0.0.3", 4096)
	st.Attach(liveSrv, h.Subscribe(Client{ID: "live", Addr: liveSrv.RemoteAddr().String()}))
	pings := make(chan struct{}, 1000)
	go func() {
		r := bufio.NewReader(live)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if strings.HasPrefix(line, ":") {
				pings <- struct{}{}
			}
		}
	}()
	// Three events of 8 KiB: more than the deaf client's window, less than
	// the send buffer, so the writes do not block.
	for i := range 3 {
		h.Publish(wire.KindRelays, []byte(`{"pad":"`+strings.Repeat(string(rune('a'+i)), 8<<10)+`"}`))
	}
	eventually(t, "the client that does not read is still attached", func() bool { return st.Stats().Stuck == 1 })
	_ = deaf.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, deaf); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("dropped client: %v, want the connection closed", err)
	}
	// The reader stays for 20 more heartbeats.
	for range 20 {
		select {
		case <-pings:
		case <-time.After(10 * time.Second):
			t.Fatal("the reading client got no ping for 10s")
		}
	}
	if st.Len() != 1 || st.Stats().Stuck != 1 {
		t.Fatalf("%d streams, %d stuck; want the reader attached and only the deaf one dropped", st.Len(), st.Stats().Stuck)
	}
}
