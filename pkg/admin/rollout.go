// The rollout endpoints (issue 15): GET /v1/rollout on every node; the
// POSTs change the rollout on the origin that holds the plan.
package admin

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/relayd/relayd/pkg/admindoc"
	"github.com/relayd/relayd/pkg/httpx"
)

// The rollout documents (declared in admindoc; rollout.Status is the
// same type).
type (
	RolloutStatus = admindoc.Rollout
	RolloutRing   = admindoc.RolloutRing
	RolloutGate   = admindoc.RolloutGate
	RolloutCounts = admindoc.RolloutCounts
	SignedGates   = admindoc.SignedGates
)

// Rollout is the node's rollout as the rollout endpoints see it. Errors
// are answered as they classify: a relay answers the actions with 409
// not_origin, a halted rollout a promote with 409 halted, an unknown ring
// 404 unknown_ring.
type Rollout interface {
	// RolloutStatus returns the plan, gates and rings (origin) or the
	// gates held (relay).
	RolloutStatus() (RolloutStatus, error)
	// Promote opens ring ("": the next ring to open) and every ring
	// before it at the newest generation.
	Promote(ring string) (RolloutStatus, error)
	// Halt stops the rollout: no ring opens until Resume.
	Halt(reason string) (RolloutStatus, error)
	// Resume lifts a halt.
	Resume() (RolloutStatus, error)
}

// PromoteRequest is the body of POST /v1/rollout/promote (optional).
type PromoteRequest struct {
	// Ring to open; "" the next one.
	Ring string `json:"ring,omitempty"`
}

// HaltRequest is the body of POST /v1/rollout/halt.
type HaltRequest struct {
	Reason string `json:"reason"`
}

var errNoRollout = &httpx.Error{Status: http.StatusNotFound, Code: "no_rollout", Msg: "this node serves no rollout"}

// routeRollout routes /v1/rollout and its actions.
func routeRollout(r chi.Router, ro Rollout) {
	answer := func(w http.ResponseWriter, f func() (RolloutStatus, error)) error {
		if ro == nil {
			return errNoRollout
		}
		st, err := f()
		if err != nil {
			return err
		}
		httpx.WriteJSON(w, http.StatusOK, st)
		return nil
	}
	r.Get("/v1/rollout", httpx.Handle(func(w http.ResponseWriter, _ *http.Request) error {
		return answer(w, func() (RolloutStatus, error) { return ro.RolloutStatus() })
	}))
	r.Post("/v1/rollout/promote", httpx.Handle(func(w http.ResponseWriter, r *http.Request) error {
		var req PromoteRequest
		if err := decodeOptional(w, r, &req); err != nil {
			return err
		}
		return answer(w, func() (RolloutStatus, error) { return ro.Promote(req.Ring) })
	}))
	r.Post("/v1/rollout/halt", httpx.Handle(func(w http.ResponseWriter, r *http.Request) error {
		var req HaltRequest
		if err := decodeOptional(w, r, &req); err != nil {
			return err
		}
		return answer(w, func() (RolloutStatus, error) { return ro.Halt(req.Reason) })
	}))
	r.Post("/v1/rollout/resume", httpx.Handle(func(w http.ResponseWriter, _ *http.Request) error {
		return answer(w, func() (RolloutStatus, error) { return ro.Resume() })
	}))
}

// decodeOptional is decodeJSON for a body that may be empty.
func decodeOptional(w http.ResponseWriter, r *http.Request, v any) error {
	err := decodeJSON(w, r, v)
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// Rollout is GET /v1/rollout.
func (c *Client) Rollout(ctx context.Context) (RolloutStatus, error) {
	var s RolloutStatus
	return s, c.do(ctx, http.MethodGet, "/v1/rollout", nil, &s)
}

// Promote is POST /v1/rollout/promote: open ring ("": the next one).
func (c *Client) Promote(ctx context.Context, ring string) (RolloutStatus, error) {
	var s RolloutStatus
	return s, c.do(ctx, http.MethodPost, "/v1/rollout/promote", PromoteRequest{Ring: ring}, &s)
}

// Halt is POST /v1/rollout/halt.
func (c *Client) Halt(ctx context.Context, reason string) (RolloutStatus, error) {
	var s RolloutStatus
	return s, c.do(ctx, http.MethodPost, "/v1/rollout/halt", HaltRequest{Reason: reason}, &s)
}

// Resume is POST /v1/rollout/resume.
func (c *Client) Resume(ctx context.Context) (RolloutStatus, error) {
	var s RolloutStatus
	return s, c.do(ctx, http.MethodPost, "/v1/rollout/resume", nil, &s)
}
