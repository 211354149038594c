// GET /v1/compliance: how many of this relay's subtree's agents are on
// the generation their ring may install (issue 15; pkg/compliance).
package admin

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/relayd/relayd/pkg/admindoc"
	"github.com/relayd/relayd/pkg/httpx"
)

// Compliance is the /v1/compliance document (pkg/compliance.Report).
type Compliance = admindoc.Compliance

// ComplianceFunc computes the compliance of the node's subtree.
type ComplianceFunc func() Compliance

var errNoOutcomes = &httpx.Error{Status: http.StatusNotFound, Code: "no_outcomes", Msg: "this node takes no agent outcomes (outcome-agents 0)"}

// routeCompliance routes GET /v1/compliance; nil answers 404 no_outcomes.
func routeCompliance(r chi.Router, compliance ComplianceFunc) {
	r.Get("/v1/compliance", httpx.Handle(func(w http.ResponseWriter, _ *http.Request) error {
		if compliance == nil {
			return errNoOutcomes
		}
		httpx.WriteJSON(w, http.StatusOK, compliance())
		return nil
	}))
}

// Compliance is GET /v1/compliance.
func (c *Client) Compliance(ctx context.Context) (Compliance, error) {
	var doc Compliance
	return doc, c.do(ctx, http.MethodGet, "/v1/compliance", nil, &doc)
}
