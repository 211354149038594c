package events

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relayd/relayd/pkg/admindoc"
)

// Event is one server-sent event.
type Event struct {
	// ID is the hub's sequence number, increasing.
	ID uint64
	// Kind is the SSE event name (wire.KindCatalog, …).
	Kind string
	// Data is one line of JSON.
	Data []byte
}

// Client describes one subscriber, for presence listings (/v1/agents);
// the document lives in admindoc.
type Client = admindoc.Stream

// key names a subscriber that holds one stream, "" for an anonymous one:
// agents by id, child relays by group and node (node names are unique
// within a group only, and default to the host name).
func clientKey(c Client) string {
	switch {
	case c.ID == "":
		return ""
	case c.Relay:
		return "relay/" + c.Group + "/" + c.ID
	default:
		return "agent/" + c.ID
	}
}

// Hub fans events out to subscribers. It is safe for concurrent use.
type Hub struct {
	mu      sync.Mutex
	seq     uint64
	latest  map[string]Event
	subs    map[*Sub]struct{}
	limits  Limits
	perAddr map[string]int // AddrKey → subscribers
	refused atomic.Int64

	streamsOnce sync.Once
	streams     *Streams
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{latest: map[string]Event{}, subs: map[*Sub]struct{}{}, perAddr: map[string]int{}}
}

// Publish records data as the newest event of kind and wakes every
// subscriber. Publishing the same data again is a no-op: subscribers are
// told of changes only.
func (h *Hub) Publish(kind string, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if old, ok := h.latest[kind]; ok && bytes.Equal(old.Data, data) {
		return
	}
	h.seq++
	h.latest[kind] = Event{ID: h.seq, Kind: kind, Data: bytes.Clone(data)}
	for s := range h.subs {
		if s.attached != nil {
			continue // woken below, all at once
		}
		select {
		case s.wake <- struct{}{}: // nil until Wake: no one waits
		default: // already woken; it will read the newest state
		}
	}
	if h.streams != nil {
		h.streams.wakeAll()
	}
}

// PublishJSON publishes v encoded as JSON.
func (h *Hub) PublishJSON(kind string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("events: encode %s: %w", kind, err)
	}
	h.Publish(kind, b)
	return nil
}

// Latest returns the newest event of kind.
func (h *Hub) Latest(kind string) (Event, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ev, ok := h.latest[kind]
	return ev, ok
}

// Subscribe adds a subscriber whatever the limits. Its first Next returns
// the newest event of every kind, so a new or reconnecting subscriber
// starts from the current state. The caller must Close it.
func (h *Hub) Subscribe(c Client) *Sub {
	s := h.newSub(c)
	h.mu.Lock()
	h.add(s)
	h.mu.Unlock()
	return s
}

func (h *Hub) newSub(c Client) *Sub {
	return &Sub{h: h, client: c, addr: AddrKey(c.Addr)}
}

// add registers s; h.mu is held.
func (h *Hub) add(s *Sub) {
	h.subs[s] = struct{}{}
	h.perAddr[s.addr]++
}

// Len is how many subscribers there are.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Clients lists the subscribers, oldest first.
func (h *Hub) Clients() []Client {
	h.mu.Lock()
	out := make([]Client, 0, len(h.subs))
	for s := range h.subs {
		c := s.client
		c.LastSeen = c.Since
		if ns := s.lastOK.Load(); ns != 0 {
			c.LastSeen = time.Unix(0, ns)
		}
		out = append(out, c)
	}
	h.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Since.Before(out[j].Since) })
	return out
}

// Count returns how many agents and child relays are subscribed.
func (h *Hub) Count() (agents, relays int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if s.client.Relay {
			relays++
		} else {
			agents++
		}
	}
	return agents, relays
}

// Sub is one subscriber. A hub holds thousands (one per agent), so it
// keeps what it must only: no map of what it was sent (the hub's
// sequence number says it: see Next), no channel until someone waits on
// Wake (an attached stream never does).
type Sub struct {
	h      *Hub
	client Client
	addr   string // AddrKey(client.Addr)
	// unsent is the socket's unsent bytes at the last ping (Streams); used
	// by the one worker writing the sub.
	unsent int
	// sent is the hub's sequence number when Next last ran: every event
	// newer than it is unsent. Used by one goroutine at a time.
	sent   uint64
	wake   chan struct{} // made by Wake; h.mu
	lastOK atomic.Int64  // unix ns of the last successful write; 0: none
	// attached, set by Streams.Attach under the hub's lock, says that
	// the stream writer wakes it, not wake.
	attached *Streams
}

// Client is what the subscriber said of itself.
func (s *Sub) Client() Client { return s.client }

// Touch records that the subscriber took a write at t (LastSeen).
func (s *Sub) Touch(t time.Time) { s.lastOK.Store(t.UnixNano()) }

// Wake is ready when there may be events to send: at once for a new
// subscriber (the current state), then after each Publish.
func (s *Sub) Wake() <-chan struct{} {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	if s.wake == nil {
		s.wake = make(chan struct{}, 1)
		if s.sent < s.h.seq || s.sent == 0 {
			s.wake <- struct{}{}
		}
	}
	return s.wake
}

// Next returns the events this subscriber has not been sent, oldest
// first, and marks them sent. The hub keeps the newest event of each
// kind, numbered from one sequence, so those are the ones numbered after
// the sequence number at the previous Next.
func (s *Sub) Next() []Event {
	s.h.mu.Lock()
	var out []Event
	for _, ev := range s.h.latest {
		if ev.ID > s.sent {
			out = append(out, ev)
		}
	}
	s.sent = s.h.seq
	s.h.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Close removes the subscriber. It may be called more than once.
func (s *Sub) Close() {
	s.h.mu.Lock()
	if _, ok := s.h.subs[s]; ok {
		delete(s.h.subs, s)
		if s.h.perAddr[s.addr]--; s.h.perAddr[s.addr] <= 0 {
			delete(s.h.perAddr, s.addr)
		}
	}
	s.h.mu.Unlock()
}

// Encode writes ev in the text/event-stream format. Data must be a single
// line (JSON is).
func Encode(w io.Writer, ev Event) error {
	if bytes.ContainsAny(ev.Data, "\r\n") {
		return fmt.Errorf("events: %s data spans lines", ev.Kind)
	}
	_, err := w.Write(appendEvent(make([]byte, 0, len(ev.Data)+64), ev))
	return err
}

// appendEvent appends ev in the text/event-stream format; its data must
// be one line (Hub data is JSON: it is).
func appendEvent(buf []byte, ev Event) []byte {
	buf = append(buf, "id: "...)
	buf = strconv.AppendUint(buf, ev.ID, 10)
	buf = append(buf, "\nevent: "...)
	buf = append(buf, ev.Kind...)
	buf = append(buf, "\ndata: "...)
	buf = append(buf, ev.Data...)
	return append(buf, "\n\n"...)
}

// Ping is a comment line: it keeps the stream (and proxies on the way)
// from idling out and tells the reader its parent is alive.
const Ping = ": ping\n\n"

// MaxLine bounds one line of a stream the Reader accepts.
const MaxLine = 1 << 20

// ErrTooLong: a stream line is longer than MaxLine.
var ErrTooLong = errors.New("events: line too long")

// Reader decodes a text/event-stream.
type Reader struct {
	r *bufio.Reader
	// Activity, if set, is called for every line read, comments included,
	// so a caller can tell a live stream from a silent one.
	Activity func()
}

// NewReader reads events from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReaderSize(r, 4096)} }

// Next returns the next event, skipping comments and fields it does not
// know. At the end of the stream it returns io.EOF (io.ErrUnexpectedEOF
// when the stream ends inside an event).
func (r *Reader) Next() (Event, error) {
	var ev Event
	var data [][]byte
	started := false
	for {
		line, err := r.line()
		if err != nil {
			if err == io.EOF && started {
				return Event{}, io.ErrUnexpectedEOF
			}
			return Event{}, err
		}
		if r.Activity != nil {
			r.Activity()
		}
		if len(line) == 0 {
			if !started {
				continue
			}
			if ev.Kind == "" {
				ev.Kind = "message"
			}
			ev.Data = bytes.Join(data, []byte("\n"))
			return ev, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			ev.Kind, started = string(value), true
		case "data":
			data, started = append(data, bytes.Clone(value)), true
		case "id":
			if id, err := strconv.ParseUint(string(value), 10, 64); err == nil {
				ev.ID, started = id, true
			}
		}
	}
}

// line reads one line without its end (\n or \r\n).
func (r *Reader) line() ([]byte, error) {
	var out []byte
	for {
		chunk, err := r.r.ReadSlice('\n')
		out = append(out, chunk...)
		if len(out) > MaxLine {
			return nil, ErrTooLong
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(out) > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		out = bytes.TrimSuffix(out[:len(out)-1], []byte("\r"))
		return out, nil
	}
}
