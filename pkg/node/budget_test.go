package node

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/clock"
)

func TestPlanBudget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                      string
		nofile                    uint64
		maxConns, events, perAddr int
		want                      budget
		clamped                   int
	}{
		// reserve 256 + 1040 (store) + 2×256 (fills) = 1808
		{name: "derived at 20,000", nofile: 20000, perAddr: DefaultEventsPerAddr,
			want: budget{NoFile: 20000, Conns: 18192, Events: 16373, PerAddr: DefaultEventsPerAddr}},
		{name: "derived at 1,024: half reserved", nofile: 1024, perAddr: DefaultEventsPerAddr,
			want: budget{NoFile: 1024, Conns: 512, Events: 448, PerAddr: 448}},
		{name: "configured within", nofile: 20000, maxConns: 5000, events: 4000, perAddr: 100,
			want: budget{NoFile: 20000, Conns: 5000, Events: 4000, PerAddr: 100}},
		{name: "configured above the limit", nofile: 20000, maxConns: 50000, events: 50000,
			want: budget{NoFile: 20000, Conns: 18192, Events: 16373}, clamped: 2},
		{name: "streams below the connections", nofile: 20000, maxConns: 1000, events: 1000,
			want: budget{NoFile: 20000, Conns: 1000, Events: 900}, clamped: 1},
		{name: "tiny limit", nofile: 100, want: budget{NoFile: 100, Conns: 50, Events: 16}},
	} {
		got := planBudget(tc.nofile, 256, tc.maxConns, tc.events, tc.perAddr)
		if len(got.Clamped) != tc.clamped {
			t.Errorf("%s: clamped %q, want %d notes", tc.name, got.Clamped, tc.clamped)
		}
		if got.NoFile != tc.want.NoFile || got.Conns != tc.want.Conns || got.Events != tc.want.Events || got.PerAddr != tc.want.PerAddr {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// A connection that is not a stream may hold an object's file too: it
// counts twice against the descriptors, a stream once.
func TestConnLimitCountsDescriptors(t *testing.T) {
	t.Parallel()
	var streams int64
	l := &connLimit{max: 100, fds: 10, streams: func() int64 { return streams }}
	admitted := 0
	for l.admit() {
		admitted++
	}
	if admitted != 5 || l.refused.Load() != 1 {
		t.Fatalf("no streams: %d admitted, %d refused; want 5 (2 descriptors each) and 1", admitted, l.refused.Load())
	}
	streams = 4 // four of them became streams: 4 + 2×1 = 6 descriptors
	for l.admit() {
		admitted++
	}
	if admitted != 7 {
		t.Fatalf("with 4 streams: %d admitted, want 7 (4 + 2×3 = 10 descriptors)", admitted)
	}
	l.max = 7
	streams = 7
	if l.admit() {
		t.Fatal("admitted beyond max")
	}
}

// Beyond the cap a connection is accepted and closed at once, without
// holding up the next accept; closing a counted connection (twice, too)
// frees its place.
func TestLimitListenerClosesBeyondTheCap(t *testing.T) {
	t.Parallel()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := &connLimit{max: 2}
	ln := newLimitListener(raw, lim, zerolog.New(zerolog.NewTestWriter(t)), clock.Real{})
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
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
	var clients []net.Conn
	dial := func() net.Conn {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		return c
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	dial()
	dial()
	a, b := <-accepted, <-accepted
	if _, ok := a.(syscall.Conn); !ok {
		t.Fatal("a counted TCP connection must keep SyscallConn (stream sockets)")
	}
	if _, ok := a.(io.ReaderFrom); !ok {
		t.Fatal("a counted TCP connection must keep ReadFrom (sendfile)")
	}
	over := dial()
	_ = over.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := over.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, syscall.ETIMEDOUT) || isTimeout(err) {
		t.Fatalf("third connection: read %d, %v; want it closed at once", n, err)
	}
	if lim.refused.Load() != 1 || lim.open.Load() != 2 {
		t.Fatalf("refused %d, open %d; want 1 and 2", lim.refused.Load(), lim.open.Load())
	}
	a.Close()
	a.Close()
	if lim.open.Load() != 1 {
		t.Fatalf("open %d after a close, want 1", lim.open.Load())
	}
	dial()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("no accept after a place was freed")
	}
	b.Close()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// flakyListener fails with EMFILE a number of times before each accept.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex
	fails int
}

func (f *flakyListener) Accept() (net.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return f.Listener.Accept()
}

// Out of descriptors, accept pauses (it does not spin) and logs once,
// not once per failure; then it serves again.
func TestLimitListenerBacksOffOnEMFILE(t *testing.T) {
	t.Parallel()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var logs bytes.Buffer
	var mu sync.Mutex
	ln := newLimitListener(&flakyListener{Listener: raw, fails: 6}, nil, zerolog.New(syncWriter{&mu, &logs}), clock.Real{})
	go func() {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err == nil {
			defer c.Close()
			_, _ = c.Read(make([]byte, 1))
		}
	}()
	start := time.Now()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// 5+10+20+40+80+160 ms of pauses: it waited, it did not spin.
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("six EMFILE failures took %s, want pauses of at least 315ms in total", took)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logs.String(), "accept failed"); n != 1 {
		t.Errorf("%d log lines for six failures, want 1:\n%s", n, logs.String())
	}
}

type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (s syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
