// An agent's report of what became of a generation (POST /-/outcome,
// issue 15): unauthenticated, so read within wire.MaxOutcomeSize before
// it is decoded, and kept within the outcome table's bounds.
package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/relayd/relayd/pkg/events"
	"github.com/relayd/relayd/pkg/outcome"
	"github.com/relayd/relayd/pkg/wire"
)

// OutcomeFunc keeps an agent's outcome, reported from the client address
// key addr (events.AddrKey): (*outcome.Table).Put. An error wrapping
// outcome.ErrAddrBudget is answered 429, any other 400.
type OutcomeFunc func(o wire.Outcome, addr string) error

// outcomeRetryAfter is the Retry-After of a 429, in seconds.
const outcomeRetryAfter = 60

// serveOutcome takes an agent's POST of its wire.Outcome: 202 once kept.
func (c *Content) serveOutcome(w http.ResponseWriter, r *http.Request) error {
	if c.cfg.Outcome == nil {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Msg: "this node takes no outcomes"}
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: "bad_content_type", Msg: "want Content-Type: application/json"}
	}
	tooLarge := &Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Msg: "outcome larger than " + strconv.Itoa(wire.MaxOutcomeSize) + " bytes"}
	if r.ContentLength > wire.MaxOutcomeSize {
		w.Header().Set("Connection", "close")
		return tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, wire.MaxOutcomeSize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge
		}
		return &Error{Status: http.StatusBadRequest, Code: "bad_outcome", Msg: "could not read the outcome", Err: err}
	}
	o, err := decodeOutcome(body)
	if err != nil {
		return &Error{Status: http.StatusBadRequest, Code: "bad_outcome", Msg: err.Error(), Err: err}
	}
	if err := c.cfg.Outcome(o, events.AddrKey(r.RemoteAddr)); err != nil {
		if errors.Is(err, outcome.ErrAddrBudget) {
			w.Header().Set("Retry-After", strconv.Itoa(outcomeRetryAfter))
			return &Error{Status: http.StatusTooManyRequests, Code: "too_many_agents", Msg: "this address reports for as many agents as it may; retry later", Err: err}
		}
		return &Error{Status: http.StatusBadRequest, Code: "bad_outcome", Msg: "outcome refused", Err: err}
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// decodeOutcome decodes and checks one outcome: no unknown field, nothing
// after it, every bound of wire.Outcome.Validate, an agent id and group
// that print.
func decodeOutcome(body []byte) (wire.Outcome, error) {
	var o wire.Outcome
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return o, errors.New("outcome: " + err.Error())
	}
	if dec.More() {
		return o, errors.New("outcome: data after the document")
	}
	if err := o.Validate(); err != nil {
		return o, err
	}
	if wire.Printable(o.Agent, len(o.Agent)) != o.Agent || wire.Printable(o.Group, len(o.Group)) != o.Group {
		return o, errors.New("outcome: agent id or group holds a rune that does not print")
	}
	return o, nil
}
