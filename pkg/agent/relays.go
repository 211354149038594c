// The relay list: bootstrap URLs, the group's relays learned from
// GET /-/relays, and which of them failed lately (pkg/relayclient).
package agent

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/relayd/relayd/pkg/relayclient"
	"github.com/relayd/relayd/pkg/wire"
)

// failedFor is how long a failed relay goes to the end of the order.
const failedFor = 30 * time.Second

// newRelayList is this agent's relay list: one random order per agent
// (an agent stays with its relay), failed relays last for failedFor.
func (a *Agent) newRelayList(boot []*url.URL) *relayclient.List {
	return relayclient.NewList(relayclient.ListConfig{Seeds: boot, FailedFor: failedFor, Refresh: a.cfg.Refresh,
		Max: a.cfg.MaxRelays, Stable: true, Clock: a.clock, Parse: ParseBase})
}

// refreshRelays re-reads the group's relays from the first relay that
// answers GET /-/relays. A relay that serves none (a plain HTTP server)
// leaves the list as it is.
func (a *Agent) refreshRelays(ctx context.Context) {
	a.relays.Discover(ctx, a.readRelays, func(base *url.URL, err error) {
		a.log.Debug().Err(err).Str("relay", base.Redacted()).Msg("relay list")
	})
}

func (a *Agent) readRelays(ctx context.Context, base *url.URL) (wire.Relays, error) {
	resp, err := a.get(ctx, base.String()+wire.RelaysPath, http.Header{"Accept": {"application/json"}})
	if err != nil {
		return wire.Relays{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return wire.Relays{}, statusError(resp.StatusCode, wire.RelaysPath)
	}
	doc, err := wire.DecodeRelays(resp.Body)
	if err != nil {
		return doc, fmt.Errorf("agent: %w", err)
	}
	return doc, nil
}
