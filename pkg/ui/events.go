// GET /v1/events: the admin event stream the page reads.

package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/httpx"
)

// Config configures the dashboard's event stream.
type Config struct {
	// API answers the snapshot's requests (GET /v1/status, …): the admin
	// router, token check included. Required.
	API http.Handler
	// Interval is the time between snapshots. Default 1 s.
	Interval time.Duration
	// MaxStreams caps the /v1/events streams open at once; beyond, 503
	// too_many_streams. Default 8.
	MaxStreams int
	// WriteTimeout ends a stream whose client took nothing for that long.
	// Default 15 s.
	WriteTimeout time.Duration
}

// DefaultConfig returns the defaults, without API.
func DefaultConfig() Config {
	return Config{Interval: time.Second, MaxStreams: 8, WriteTimeout: 15 * time.Second}
}

// Events serves GET /v1/events and makes the snapshots its streams send.
type Events struct {
	cfg Config
	log zerolog.Logger

	mu      sync.Mutex
	subs    map[*sub]struct{}
	auth    string        // the Authorization of the newest stream, for the snapshot's requests
	stop    chan struct{} // closes the producer; nil while none runs
	last    []byte        // the newest snapshot event
	kick    chan struct{} // a change was made: a snapshot now
	lastRun time.Time
}

// sub is one stream: the newest snapshot not yet written (older ones are
// dropped; a snapshot is complete by itself).
type sub struct{ ch chan []byte }

// NewEvents builds the stream; it starts nothing until a client comes.
func NewEvents(cfg Config, log zerolog.Logger) *Events {
	def := DefaultConfig()
	if cfg.Interval <= 0 {
		cfg.Interval = def.Interval
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = def.MaxStreams
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = def.WriteTimeout
	}
	return &Events{cfg: cfg, log: log, subs: map[*sub]struct{}{}, kick: make(chan struct{}, 1)}
}

var errTooManyStreams = &httpx.Error{Status: http.StatusServiceUnavailable, Code: "too_many_streams",
	Msg: "too many dashboard streams open on this admin port", RetryAfter: 5}

// ServeHTTP is GET /v1/events: "event: snapshot" with a Snapshot as data,
// until the client goes. The admin server's read and write timeouts do not
// end it; a client that takes nothing for WriteTimeout does.
func (e *Events) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s, first, ok := e.subscribe(r.Header.Get("Authorization"))
	if !ok {
		httpx.WriteError(w, r, errTooManyStreams)
		return
	}
	defer e.unsubscribe(s)
	rc := http.NewResponseController(w)
	// The server's ReadTimeout would end the request's context mid-stream.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	send := func(ev []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(e.cfg.WriteTimeout))
		if _, err := w.Write(ev); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send([]byte(": relayd dashboard stream\n\n")) || (first != nil && !send(first)) {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case ev := <-s.ch:
			if !send(ev) {
				return
			}
		}
	}
}

// minKickGap is the least time between two snapshots that changes ask for.
const minKickGap = 250 * time.Millisecond

// Changed asks for a snapshot now (after a change made through the admin
// API); snapshots asked for closer than minKickGap (or a quarter Interval)
// after the last one wait for it.
func (e *Events) Changed() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// AfterChange is a middleware that calls Changed after each request that
// may change something (every method but GET, HEAD and OPTIONS).
func (e *Events) AfterChange(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			e.Changed()
		}
	})
}

func (e *Events) subscribe(auth string) (*sub, []byte, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.subs) >= e.cfg.MaxStreams {
		return nil, nil, false
	}
	s := &sub{ch: make(chan []byte, 1)}
	e.subs[s] = struct{}{}
	e.auth = auth
	if e.stop == nil {
		e.stop = make(chan struct{})
		e.last = nil
		go e.produce(e.stop)
	}
	return s, e.last, true
}

func (e *Events) unsubscribe(s *sub) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.subs, s)
	if len(e.subs) == 0 && e.stop != nil {
		close(e.stop)
		e.stop = nil
	}
}

// produce makes a snapshot now, then every Interval and after each kick,
// until stop closes.
func (e *Events) produce(stop <-chan struct{}) {
	t := time.NewTicker(e.cfg.Interval)
	defer t.Stop()
	for {
		e.publish(stop)
		select {
		case <-stop:
			return
		case <-t.C:
		case <-e.kick:
			// Kicks are spaced: a flood of POSTs costs at most one
			// snapshot per minKickGap.
			select {
			case <-stop:
				return
			case <-time.After(min(e.cfg.Interval/4, minKickGap) - time.Since(e.lastRunTime())):
			}
		}
	}
}

func (e *Events) lastRunTime() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastRun
}

// publish makes one snapshot and hands it to every stream.
func (e *Events) publish(stop <-chan struct{}) {
	e.mu.Lock()
	auth := e.auth
	e.lastRun = time.Now()
	e.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	snap := e.snapshot(ctx, auth)
	b, err := json.Marshal(snap)
	if err != nil {
		e.log.Error().Err(err).Msg("dashboard snapshot")
		return
	}
	var ev bytes.Buffer
	ev.Grow(len(b) + 32)
	ev.WriteString("event: snapshot\ndata: ")
	ev.Write(b)
	ev.WriteString("\n\n")
	e.mu.Lock()
	defer e.mu.Unlock()
	e.last = ev.Bytes()
	for s := range e.subs {
		select { // the newest replaces one not yet taken
		case <-s.ch:
		default:
		}
		s.ch <- e.last
	}
}
