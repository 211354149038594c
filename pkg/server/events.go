// The push stream (GET /-/events) and the children's reports (POST
// /-/report): the two relay-to-relay conversations a child opens to its
// parent besides fetching objects.
package server

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/relayd/relayd/pkg/events"
	"github.com/relayd/relayd/pkg/hops"
	"github.com/relayd/relayd/pkg/treeauth"
	"github.com/relayd/relayd/pkg/wire"
)

// DefaultHeartbeat is how often an idle event stream gets a ping.
const DefaultHeartbeat = 15 * time.Second

// streamRetryAfter is the least Retry-After, in seconds, of a stream
// refused for the limits; up to as much again is added at random.
const streamRetryAfter = 10

// eventWriteTimeout bounds one write to an event stream: a subscriber that
// takes longer is dropped (it reconnects), so it cannot hold a goroutine
// and a buffer forever.
const eventWriteTimeout = 10 * time.Second

// serveEvents holds a text/event-stream open: the current state at once,
// then every change, and a ping when idle.
func (c *Content) serveEvents(w http.ResponseWriter, r *http.Request) error {
	if c.cfg.Events == nil {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Msg: "this node serves no event stream"}
	}
	ctx, err := c.guard(r, false) // a stream proves itself later
	if err != nil {
		return err
	}
	q := r.URL.Query()
	client := events.Client{ID: q.Get(wire.AgentParam), Addr: r.RemoteAddr, Since: time.Now()}
	if v := r.Header.Get(wire.AgentHeader); v != "" {
		client.ID = v
	}
	if path := hops.From(ctx); len(path) > 0 {
		// A stream claiming to be a child relay's must prove it.
		node, err := c.relayClaim(w, r, path[len(path)-1])
		if err != nil {
			return err
		}
		client.Relay, client.Group, client.ID = true, path[len(path)-1], node
	}
	if len(client.ID) > 128 {
		return &Error{Status: http.StatusBadRequest, Code: "bad_agent", Msg: "agent id longer than 128 bytes"}
	}
	if v := q.Get(wire.GenerationParam); v != "" {
		g, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return &Error{Status: http.StatusBadRequest, Code: "bad_generation", Msg: "generation must be a number"}
		}
		client.Generation = g
	}
	sub, err := c.join(w, client)
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	if attached := c.attachStream(rc, sub); attached {
		return nil
	}
	defer sub.Close()
	return c.pump(w, r, rc, sub)
}

// pump writes the stream: the retry hint, then every change of sub, and
// a ping when idle, until the client leaves, the node shuts down or a
// write fails (the subscriber reconnects). Every write has
// eventWriteTimeout.
func (c *Content) pump(w http.ResponseWriter, r *http.Request, rc *http.ResponseController, sub *events.Sub) error {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	// Proxies on the way (nginx) must pass events at once.
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(f func() error) error {
		_ = rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
		if err := f(); err != nil {
			return err
		}
		if err := rc.Flush(); err != nil {
			return err
		}
		sub.Touch(time.Now())
		return nil
	}
	if err := write(func() error { _, err := io.WriteString(w, "retry: 2000\n\n"); return err }); err != nil {
		return nil
	}
	ping := time.NewTicker(c.cfg.Heartbeat)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-c.cfg.Closing:
			// Shutting down: the subscriber reconnects to another relay.
			return nil
		case <-ping.C:
			if err := write(func() error { _, err := io.WriteString(w, events.Ping); return err }); err != nil {
				return nil
			}
		case <-sub.Wake():
			err := write(func() error {
				for _, ev := range sub.Next() {
					if err := events.Encode(w, ev); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return nil // the subscriber went away or is too slow: it reconnects
			}
		}
	}
}

// join subscribes client within the hub's limits. Beyond them the answer
// is 503 too_many_streams, before the connection is taken over, telling
// the client when to come back (spread, so that a crowd does not return
// at once), and the connection is closed after it: a refused client must
// not keep a place of the content port's budget idle.
func (c *Content) join(w http.ResponseWriter, client events.Client) (*events.Sub, error) {
	sub, err := c.cfg.Events.Join(client)
	if err != nil {
		w.Header().Set("Connection", "close")
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: "too_many_streams", Msg: "too many event streams, retry later",
			Err: err, RetryAfter: streamRetryAfter + rand.IntN(streamRetryAfter)}
	}
	return sub, nil
}

// streamHead is the response head of a stream taken over from the HTTP
// server: the body runs until the connection closes.
const streamHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n" +
	"X-Accel-Buffering: no\r\nConnection: close\r\n\r\nretry: 2000\n\n"

// attachStream takes an HTTP/1.x connection over from the server and
// hands it to the hub's stream writer: an idle subscriber then costs its
// connection and its Sub, not two goroutines and the server's buffers,
// which is what lets one relay hold 10,000 agents in little memory. It
// reports false when the connection cannot be taken over (HTTP/2): the
// caller serves the stream itself.
func (c *Content) attachStream(rc *http.ResponseController, sub *events.Sub) bool {
	conn, brw, err := rc.Hijack()
	if err != nil {
		return false
	}
	_ = brw // what the client sent after the request is ignored
	_ = conn.SetReadDeadline(time.Time{})
	_ = conn.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
	if _, err := io.WriteString(conn, streamHead); err != nil {
		conn.Close()
		sub.Close()
		return true
	}
	sub.Touch(time.Now())
	n := c.cfg.Events.Streams(c.cfg.Heartbeat, eventWriteTimeout, c.cfg.Closing).Attach(conn, sub)
	if cl := sub.Client(); cl.Relay && n > 0 && isPowerOf10(n) {
		// Two relays with one group and node name: said once, then at 10,
		// 100, … times (from one address they take turns, backing off).
		c.log.Warn().Str("relay", cl.Group+"/"+cl.ID).Str("addr", cl.Addr).Int64("times", n).
			Msg("two event streams claim one child relay's group and node name: two relays share a name? (see conflicts in relayd status)")
	}
	return true
}

func isPowerOf10(n int64) bool {
	for n >= 10 && n%10 == 0 {
		n /= 10
	}
	return n == 1
}

// maxReport bounds a report's body: a subtree of thousands of relays.
const maxReport = 8 << 20

// serveReport takes a child relay's report of itself and its subtree.
// The credential is checked before a byte of the body is read; the body
// is decoded as it streams in (wire.DecodeReport stops at the
// limits), at most maxReportDecodes at once (a few more wait for a
// turn), and kept only when it hashes
// to the signed digest and describes its sender.
func (c *Content) serveReport(w http.ResponseWriter, r *http.Request) error {
	if c.cfg.Report == nil {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Msg: "this node keeps no reports"}
	}
	id, err := c.verifyRelay(w, r, wire.ReportPath)
	if err != nil {
		return err
	}
	if _, err := c.guard(r, true); err != nil {
		return err
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: "bad_content_type", Msg: "want Content-Type: application/json"}
	}
	if r.ContentLength > maxReport {
		w.Header().Set("Connection", "close")
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Msg: "report larger than 8 MiB"}
	}
	release, err := c.reportSlot(r)
	if err != nil {
		return err
	}
	defer release()
	// The slot is held reading the body at most as long as pace allows;
	// the server clears the deadline before it reads the next request.
	body, err := pace(w, http.MaxBytesReader(w, r.Body, maxReport))
	if err != nil {
		return err
	}
	if p, ok := body.(*paced); ok {
		defer p.collect()
	}
	if !id.Body.IsZero() {
		body = treeauth.CheckBody(body, id.Body)
	} else if id.By != treeauth.ByCertificate {
		return &Error{Status: http.StatusForbidden, Code: "tree_auth_invalid", Msg: "the signature does not cover a body (b= missing)"}
	}
	rep, err := wire.DecodeReport(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.Is(err, treeauth.ErrInvalid):
			c.refused(r, err)
			return &Error{Status: http.StatusForbidden, Code: "tree_auth_invalid", Msg: "tree credential refused", Err: err}
		case errors.As(err, &tooBig):
			return &Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Msg: "report larger than 8 MiB"}
		case errors.Is(err, os.ErrDeadlineExceeded):
			w.Header().Set("Connection", "close")
			return &Error{Status: http.StatusRequestTimeout, Code: "timeout", Err: err,
				Msg: fmt.Sprintf("the report's body came too slowly (at least %d KiB/s after %s, all within %s)", reportMinRate>>10, reportReadGrace, reportReadTimeout)}
		}
		return &Error{Status: http.StatusBadRequest, Code: "bad_report", Msg: "report refused", Err: err}
	}
	// A relay reports its own subtree only.
	if !id.Is(rep.Group, rep.Node) {
		err := fmt.Errorf("a report of %s/%s sent as %s", rep.Group, rep.Node, id)
		c.refused(r, err)
		return &Error{Status: http.StatusForbidden, Code: "tree_auth_invalid", Msg: "a relay may report only itself and its subtree", Err: err}
	}
	if err := c.cfg.Report(rep); err != nil {
		if errors.Is(err, hops.ErrLoop) {
			return err
		}
		return &Error{Status: http.StatusBadRequest, Code: "bad_report", Msg: "report refused", Err: err}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
