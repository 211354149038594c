// The control plane's door: who may post a report or hold an event
// stream as a child relay (pkg/treeauth), and how many reports are
// decoded at once.
package server

import (
	"errors"
	"io"
	"net/http"
	"runtime"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/treeauth"
	"github.com/relayd/relayd/pkg/wire"
)

// maxReportDecodes bounds the reports decoded at once; up to
// maxReportWaiting more wait at most reportSlotWait for a turn (their
// bodies unread), and beyond that a report gets 503 busy at once (its
// sender reports again in an interval). Ten concurrent 8 MiB reports
// (the attack's, refused at 20,001 relays) raised the RSS by 44 to 57 MiB
// two at a time, 18 MiB one at a time (test/hostile).
//
// reportReadTimeout bounds the time a report holds its slot reading its
// body: the whole body within it (8 MiB in 30 s is 280 KB/s), and after
// reportReadGrace at least reportMinRate on average so far, or 408 and the
// connection goes: a body dripped a byte at a time holds the slot some
// 5 s, not 30.
const (
	maxReportDecodes  = 1
	maxReportWaiting  = 32
	reportSlotWait    = 5 * time.Second
	reportReadTimeout = 30 * time.Second
	reportReadGrace   = 5 * time.Second
	reportMinRate     = 64 << 10 // bytes a second
)

// paced reads a report's body under a read deadline that moves with what
// has arrived: start + reportReadGrace + n/reportMinRate, never past
// start + reportReadTimeout.
type paced struct {
	r     io.Reader
	rc    *http.ResponseController
	start time.Time
	n     int64
}

// pace returns body read under the report deadlines; where the
// connection has no deadlines (unit tests), body as it is.
func pace(w http.ResponseWriter, body io.Reader) (io.Reader, error) {
	p := &paced{r: body, rc: http.NewResponseController(w), start: time.Now()}
	if err := p.set(); err != nil {
		if errors.Is(err, http.ErrNotSupported) {
			return body, nil
		}
		return nil, err
	}
	return p, nil
}

// collectAfter is the body size from which a report's decoding is
// followed by a garbage collection, still holding the slot.
const collectAfter = 1 << 20

// collect runs the garbage collector after a large report: decoding one
// of 8 MiB leaves some 30 MiB of garbage, which a relay's GC target of
// 400 % would let pile up over a few reports to five times the live heap
// (+128 MiB RSS for ten valid 8 MiB reports, measured). Collecting while
// holding the only slot keeps the peak near one decode above the live
// heap; it costs a few milliseconds per large report, and only tree-key
// holders can send one.
func (p *paced) collect() {
	if p.n >= collectAfter {
		runtime.GC()
	}
}

func (p *paced) set() error {
	d := min(reportReadGrace+time.Duration(p.n)*time.Second/reportMinRate, reportReadTimeout)
	return p.rc.SetReadDeadline(p.start.Add(d))
}

func (p *paced) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if n > 0 && err == nil {
		err = p.set()
	}
	return n, err
}

// verifyRelay checks a control-plane request's credential from its
// headers, before any of its body is read: 401 tree_auth_required
// without one, 403 tree_auth_invalid for one that does not hold.
func (c *Content) verifyRelay(w http.ResponseWriter, r *http.Request, endpoint string) (treeauth.Identity, error) {
	id, err := c.cfg.TreeAuth.Verify(r, endpoint)
	if err == nil {
		return id, nil
	}
	c.refused(r, err)
	// The body of a refused request is not read: the connection goes.
	w.Header().Set("Connection", "close")
	switch {
	case errors.Is(err, treeauth.ErrReplayed):
		return id, &Error{Status: http.StatusForbidden, Code: "tree_auth_replayed", Msg: "tree credential already used", Err: err}
	case errors.Is(err, treeauth.ErrInvalid):
		return id, &Error{Status: http.StatusForbidden, Code: "tree_auth_invalid", Msg: "tree credential refused", Err: err}
	}
	w.Header().Set("WWW-Authenticate", `RelayTree realm="relayd"`)
	return id, &Error{Status: http.StatusUnauthorized, Code: "tree_auth_required",
		Msg: "reports and child-relay streams need the tree credential (" + wire.AuthHeader + " or a client certificate)", Err: err}
}

// relayClaim checks an event stream that claims to come from a child
// relay of group (the last group of its X-Relay-Path) named by its
// X-Relay-Node header: only a relay proving that identity is counted as
// one (and may replace that relay's stream).
func (c *Content) relayClaim(w http.ResponseWriter, r *http.Request, group string) (node string, err error) {
	id, err := c.verifyRelay(w, r, wire.EventsPath)
	if err != nil {
		return "", err
	}
	node = r.Header.Get(wire.NodeHeader)
	if len(node) > 256 {
		return "", &Error{Status: http.StatusBadRequest, Code: "bad_header", Msg: wire.NodeHeader + " longer than 256 bytes"}
	}
	if !id.Is(group, node) {
		err := errors.New("the stream claims " + group + "/" + node + " but the credential is " + id.String())
		c.refused(r, err)
		return "", &Error{Status: http.StatusForbidden, Code: "tree_auth_invalid", Msg: "tree credential refused", Err: err}
	}
	return node, nil
}

// reportSlot takes one of the report decoding slots, waiting a little
// for one, or answers 503.
func (c *Content) reportSlot(r *http.Request) (release func(), err error) {
	busy := &Error{Status: http.StatusServiceUnavailable, Code: "busy", Msg: "reports are being decoded; report again shortly"}
	if c.reporting.Add(1) > maxReportDecodes+maxReportWaiting {
		c.reporting.Add(-1)
		return nil, busy
	}
	t := time.NewTimer(reportSlotWait)
	defer t.Stop()
	select {
	case c.reportSlots <- struct{}{}:
		return func() { <-c.reportSlots; c.reporting.Add(-1) }, nil
	case <-t.C:
		c.reporting.Add(-1)
		return nil, busy
	case <-r.Context().Done():
		c.reporting.Add(-1)
		return nil, r.Context().Err()
	}
}

// refused logs a refused control-plane request, at most one line per
// interval (pkg/ratelog) with the count of those held back: a flood of
// them is a line every 10 s, not one per request.
func (c *Content) refused(r *http.Request, err error) {
	c.refusals.Event(&c.log, zerolog.WarnLevel, "tree auth refused").Err(err).Str("remote", r.RemoteAddr).Str("path", r.URL.Path).
		Msg("refused a report or child-relay stream without a valid tree credential")
}
