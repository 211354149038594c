package hierarchy

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/treeauth"
	"github.com/relayd/relayd/pkg/wire"
)

// plainUpstream is a static file server (404 at /-/...) that can turn
// into a relay (200 at /-/relays and /-/report), counting those requests.
type plainUpstream struct {
	*httptest.Server
	relay           atomic.Bool
	relays, reports atomic.Int32
}

func newPlainUpstream(t *testing.T) *plainUpstream {
	t.Helper()
	u := &plainUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case wire.RelaysPath:
			u.relays.Add(1)
			if u.relay.Load() {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"group":"a","relays":[]}`))
				return
			}
		case wire.ReportPath:
			u.reports.Add(1)
			if u.relay.Load() {
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

// A relay whose upstream is a plain static server asks it for /-/relays
// and posts /-/report again only after a wait that doubles from twice the
// refresh (1 min) up to 10 min; as soon as it answers 200, as normal.
// On a fake clock: the loop's ticks are the calls.
func TestPlainUpstreamBackoff(t *testing.T) {
	t.Parallel()
	up := newPlainUpstream(t)
	key, _ := treeauth.NewKey(bytes.Repeat([]byte{5}, treeauth.KeySize))
	cfg := DefaultConfig()
	cfg.Upstreams = []string{up.URL}
	cfg.Group, cfg.Node = "b", "b1"
	cfg.Auth = &treeauth.Signer{Key: key, Group: "b", Node: "b1"}
	c := newClient(t, cfg)
	clk := clock.NewFake(time.Unix(1700000000, 0))
	c.plain.clock = clk
	ctx := context.Background()
	// tick is one refresh and three reports (30 s).
	tick := func() {
		c.discover(ctx)
		for range 3 {
			c.SendReport(ctx, wire.Report{Group: "b", Node: "b1"}, time.Second)
			clk.Advance(10 * time.Second)
		}
	}
	want := func(relays, reports int32, when string) {
		t.Helper()
		if r, p := up.relays.Load(), up.reports.Load(); r != relays || p != reports {
			t.Fatalf("%s: %d /-/relays and %d /-/report requests, want %d and %d", when, r, p, relays, reports)
		}
	}
	tick()
	want(1, 1, "first 30 s")
	// Waits of 1, 2, 4, 8, 10, 10 min: one request of each at each end.
	var asked int32 = 1
	for _, wait := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 10 * time.Minute, 10 * time.Minute} {
		for range int(wait/(30*time.Second)) - 1 {
			tick()
		}
		want(asked, asked, "before the end of wait "+wait.String())
		tick()
		asked++
		want(asked, asked, "at the end of wait "+wait.String())
	}
	// It becomes a relay: after the current wait, every refresh and every
	// report again.
	up.relay.Store(true)
	for range 20 {
		tick()
	}
	want(asked+1, asked+3, "the first requests after the wait (and the two reports after it)")
	for range 4 {
		tick()
	}
	want(asked+5, asked+3+12, "two minutes more as a relay")
}
