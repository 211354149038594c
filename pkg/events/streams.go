// Streams: event streams whose connections the HTTP server handed over, so
// that ten thousand idle subscribers cost a connection and a Sub each, not
// two goroutines, their stacks and the server's buffers.
package events

import (
	"encoding/json"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relayd/relayd/pkg/wire"
)

// Streams writes the hub's events and pings to attached connections from
// a fixed number of goroutines. Create it with Hub.Streams.
type Streams struct {
	hub          *Hub
	heartbeat    time.Duration
	writeTimeout time.Duration

	mu      sync.Mutex
	conns   map[*Sub]net.Conn
	pending map[*Sub]bool   // sub → ping only (no event news)
	busy    map[*Sub]bool   // being written by a worker: not taken again
	byID    map[string]*Sub // Client.key → its one stream
	ready   chan struct{}   // a worker should look at pending
	closed  bool

	replaced, stuck atomic.Int64
	conflicts       map[string]*Conflict         // relay identity and addresses → conflict
	relays          map[string]map[*Sub]struct{} // Client.key of a relay → its open streams
}

// streamWorkers is how many goroutines write to attached streams. Writes
// go to socket buffers and take microseconds; a stuck subscriber holds a
// worker at most writeTimeout.
const streamWorkers = 16

// Streams returns the hub's stream writer, starting it on first use with
// these settings; it stops, closing every attached connection, when
// closing is closed (nil: never).
func (h *Hub) Streams(heartbeat, writeTimeout time.Duration, closing <-chan struct{}) *Streams {
	h.streamsOnce.Do(func() {
		s := &Streams{hub: h, heartbeat: heartbeat, writeTimeout: writeTimeout, conns: map[*Sub]net.Conn{},
			pending: map[*Sub]bool{}, busy: map[*Sub]bool{}, byID: map[string]*Sub{}, ready: make(chan struct{}, streamWorkers),
			conflicts: map[string]*Conflict{}, relays: map[string]map[*Sub]struct{}{}}
		h.mu.Lock()
		h.streams = s
		h.mu.Unlock()
		stop := make(chan struct{})
		for range streamWorkers {
			go s.work(stop)
		}
		go s.pinger(closing, stop)
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.streams
}

// Attach hands conn over: sub's events (those it has not been sent yet)
// and a ping every heartbeat are written to it until a write fails or
// times out, or the client stops taking what is sent (see stalled), then
// conn is closed and sub removed. The caller has written the response
// head. A subscriber with an id holds one stream per address: a new
// stream with its id from the same address replaces the old one (which
// the relay would notice only at the next ping otherwise: nothing reads
// these connections), and the old one is told so (wire.KindReplaced) before it
// is closed. A stream with the same id from another address does not
// replace it: ids are not secrets, and a stranger must not be able to
// push a real agent off its stream; both stay, each counted against its
// own address.
//
// It returns, when a child relay's identity is now claimed by two open
// streams (this one replaced another still open, or one from another
// address holds it too), how many times that happened so far (1 the
// first time), else 0.
func (s *Streams) Attach(conn net.Conn, sub *Sub) (replaced int64) {
	s.hub.mu.Lock()
	sub.attached = s
	s.hub.mu.Unlock()
	setSendBuffer(conn, streamSendBuffer)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		conn.Close()
		sub.Close()
		return 0
	}
	s.conns[sub] = conn
	s.pending[sub] = false // send what it has not seen
	var old *Sub
	if id := identity(sub); id != "" {
		old = s.byID[id]
		s.byID[id] = sub
	}
	elsewhere := s.trackRelay(sub)
	s.mu.Unlock()
	if len(elsewhere) > 0 {
		// Both stay (a stranger must not push a relay off), but two
		// relays with one name are worth an operator's eye.
		replaced = s.recordConflict(sub, elsewhere...)
	}
	if old != nil {
		s.replaced.Add(1)
		s.mu.Lock()
		oc := s.conns[old]
		s.mu.Unlock()
		// A client that reconnects has usually closed its old stream
		// already (the relay notices at the next ping): that is no
		// conflict. One still open is held by another process.
		if oc != nil {
			if closed, _ := peerClosed(oc); !closed {
				replaced = s.recordConflict(sub)
			}
		}
		s.retire(old, "a newer stream with this identity from the same address replaced this one")
	}
	s.signal()
	return replaced
}

// identity is the key of the one stream a subscriber may hold, "" for
// an anonymous one: its Client.key at its address.
func identity(sub *Sub) string {
	if k := clientKey(sub.client); k != "" {
		return k + "@" + sub.addr
	}
	return ""
}

// streamSendBuffer is the kernel send buffer asked for on an attached
// stream (the kernel doubles it). Events are small and a reader takes
// them at once; a client that does not read fills this little, and then
// a write blocks and its deadline drops the client, instead of the
// kernel growing the buffer to megabytes per stream.
const streamSendBuffer = 32 << 10

// retireTimeout bounds the final write to a replaced stream.
const retireTimeout = time.Second

// retire ends sub's stream with a wire.KindReplaced event saying why, then
// closes it. The write is bounded by retireTimeout: a stream that does
// not take it is closed anyway.
func (s *Streams) retire(sub *Sub, reason string) {
	conn := s.remove(sub)
	if conn == nil {
		return
	}
	data, _ := json.Marshal(wire.Replaced{Reason: reason})
	_ = conn.SetWriteDeadline(time.Now().Add(retireTimeout))
	_, _ = conn.Write(appendEvent(nil, Event{Kind: wire.KindReplaced, Data: data}))
	conn.Close()
	sub.Close()
}

// StreamStats counts what Streams ended besides clients that left.
type StreamStats struct {
	// Replaced: streams replaced by a newer one with their identity.
	Replaced int64 `json:"replaced"`
	// Stuck: streams dropped because the client took nothing for a
	// heartbeat while bytes waited for it.
	Stuck int64 `json:"stuck"`
}

// Stats returns the counts so far.
func (s *Streams) Stats() StreamStats {
	return StreamStats{Replaced: s.replaced.Load(), Stuck: s.stuck.Load()}
}

// StreamStats is the stream writer's Stats, zero before it started.
func (h *Hub) StreamStats() StreamStats {
	h.mu.Lock()
	s := h.streams
	h.mu.Unlock()
	if s == nil {
		return StreamStats{}
	}
	return s.Stats()
}

// Len is how many connections are attached.
func (s *Streams) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// wakeAll queues every attached stream for what it has not been sent.
// Hub.Publish calls it under the hub's lock: one lock for all the
// streams, not one each, and it does not block.
func (s *Streams) wakeAll() {
	s.mu.Lock()
	for sub := range s.conns {
		s.pending[sub] = false
	}
	s.mu.Unlock()
	for range streamWorkers {
		s.signal()
	}
}

func (s *Streams) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// take removes up to n pending subscribers.
func (s *Streams) take(n int) map[*Sub]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[*Sub]bool, min(n, len(s.pending)))
	for sub, ping := range s.pending {
		if len(out) == n {
			break
		}
		if s.busy[sub] {
			continue // its writer takes it again when done
		}
		out[sub] = ping
		s.busy[sub] = true
		delete(s.pending, sub)
	}
	if len(out) == n {
		s.signal() // maybe more for another worker
	}
	return out
}

// done ends a worker's turn on sub.
func (s *Streams) done(sub *Sub) {
	s.mu.Lock()
	delete(s.busy, sub)
	_, again := s.pending[sub]
	s.mu.Unlock()
	if again {
		s.signal()
	}
}

func (s *Streams) work(stop <-chan struct{}) {
	buf := make([]byte, 0, 4096)
	for {
		select {
		case <-stop:
			return
		case <-s.ready:
		}
		for {
			batch := s.take(64)
			if len(batch) == 0 {
				break
			}
			for sub, ping := range batch {
				buf = s.write(sub, ping, buf[:0])
				s.done(sub)
			}
		}
	}
}

// write sends sub what it has not seen, or a ping. At a ping it first
// checks that the client took what was sent before (see stalled).
func (s *Streams) write(sub *Sub, ping bool, buf []byte) []byte {
	s.mu.Lock()
	conn := s.conns[sub]
	s.mu.Unlock()
	if conn == nil {
		return buf
	}
	if ping && s.stalled(conn, sub) {
		s.stuck.Add(1)
		s.detach(sub)
		return buf
	}
	for _, ev := range sub.Next() {
		buf = appendEvent(buf, ev)
	}
	if len(buf) == 0 {
		if !ping {
			return buf
		}
		buf = append(buf, Ping...)
	}
	_ = conn.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	if _, err := conn.Write(buf); err != nil {
		s.detach(sub) // gone or too slow: it reconnects
		return buf
	}
	sub.Touch(time.Now())
	return buf
}

// stalled reports whether the client of conn took nothing since the last
// ping: bytes were waiting for it in the socket (sent and not
// acknowledged, or not sent for a closed window) then, and no fewer wait
// now. A reader acknowledges a ping within a round trip, so at the next
// heartbeat its socket is empty; a client that does not read (its window
// closed) or a peer that is gone (nothing acknowledged) keeps the bytes
// there. The write deadline alone does not catch these: a ping fits in
// the send buffer, so its write never blocks. Where the socket cannot be
// asked (not Linux, not TCP) it reports false.
func (s *Streams) stalled(conn net.Conn, sub *Sub) bool {
	n, ok := unsentBytes(conn)
	if !ok {
		return false
	}
	prev := sub.unsent
	sub.unsent = n
	return n > 0 && prev > 0 && n >= prev
}

// remove forgets sub and returns its connection, nil if it was gone.
func (s *Streams) remove(sub *Sub) net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	conn := s.conns[sub]
	delete(s.conns, sub)
	delete(s.pending, sub)
	if id := identity(sub); s.byID[id] == sub {
		delete(s.byID, id)
	}
	if conn != nil {
		s.untrackRelay(sub)
	}
	return conn
}

func (s *Streams) detach(sub *Sub) {
	if conn := s.remove(sub); conn != nil {
		conn.Close()
		sub.Close()
	}
}

// pinger queues a ping for every stream each heartbeat, and closes them
// all when closing is closed.
func (s *Streams) pinger(closing <-chan struct{}, stop chan struct{}) {
	t := time.NewTicker(s.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-closing:
			s.mu.Lock()
			s.closed = true
			conns := s.conns
			s.conns, s.pending, s.byID, s.relays = map[*Sub]net.Conn{}, map[*Sub]bool{}, map[string]*Sub{}, map[string]map[*Sub]struct{}{}
			s.mu.Unlock()
			close(stop)
			for sub, conn := range conns {
				conn.Close()
				sub.Close()
			}
			return
		case <-t.C:
			s.mu.Lock()
			for sub := range s.conns {
				if _, queued := s.pending[sub]; !queued {
					s.pending[sub] = true
				}
			}
			s.mu.Unlock()
			for range streamWorkers {
				s.signal()
			}
		}
	}
}
