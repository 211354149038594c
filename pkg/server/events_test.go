package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/events"
	"github.com/relayd/relayd/pkg/hops"
	"github.com/relayd/relayd/pkg/origin"
	"github.com/relayd/relayd/pkg/treeauth"
	"github.com/relayd/relayd/pkg/wire"
)

// testTreeKey is the tree key of the relayServer's tree.
var testTreeKey, _ = treeauth.NewKey(bytes.Repeat([]byte{7}, treeauth.KeySize))

// sign signs req as group/node with the test tree key.
func sign(req *http.Request, endpoint, group, node string, body []byte) {
	(&treeauth.Signer{Key: testTreeKey, Group: group, Node: node}).Sign(req, endpoint, body)
}

// relayServer is a content port of group "hq" with an event hub, a report
// sink and a generation guard that says "behind" for generations above
// live.
type relayServer struct {
	*httptest.Server
	hub     *events.Hub
	closing chan struct{}
	mu      sync.Mutex
	reports []wire.Report
	live    uint64
}

func newRelayServer(t *testing.T) *relayServer {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/obj", []byte("object"), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := origin.New(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	rs := &relayServer{hub: events.NewHub(), closing: make(chan struct{}), live: 4}
	cfg := ContentConfig{Source: o, Relays: func() wire.Relays { return wire.Relays{Relays: []wire.Relay{}} }, Group: "hq", MaxHops: 8,
		Events: rs.hub, Heartbeat: 50 * time.Millisecond, Closing: rs.closing,
		Report: func(r wire.Report) error {
			if r.Group == "loop" || (len(r.Children) > 0 && r.Children[0].Group == "loop") {
				return fmt.Errorf("%w: test", hops.ErrLoop)
			}
			if err := r.Validate(); err != nil {
				return err
			}
			rs.mu.Lock()
			rs.reports = append(rs.reports, r)
			rs.mu.Unlock()
			return nil
		},
		Behind:   func(g uint64) bool { return g > rs.live },
		TreeAuth: &treeauth.Verifier{Key: testTreeKey},
	}
	rs.Server = httptest.NewServer(NewContent(cfg, zerolog.New(zerolog.NewTestWriter(t))))
	t.Cleanup(rs.Close)
	return rs
}

// The stream starts with the current state, carries each change, pings
// when idle, records its subscriber and ends when the server closes.
func TestEventStream(t *testing.T) {
	t.Parallel()
	rs := newRelayServer(t)
	rs.hub.Publish(wire.KindCatalog, []byte(`{"generation":4}`))
	req, _ := http.NewRequest(http.MethodGet, rs.URL+"/-/events?agent=agent-7&generation=3", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, ct)
	}
	r := events.NewReader(resp.Body)
	var lines atomic.Int64
	r.Activity = func() { lines.Add(1) }
	ev, err := r.Next()
	if err != nil || ev.Kind != wire.KindCatalog || string(ev.Data) != `{"generation":4}` {
		t.Fatalf("first event %+v, %v; want the current generation", ev, err)
	}
	clients := rs.hub.Clients()
	if len(clients) != 1 || clients[0].ID != "agent-7" || clients[0].Generation != 3 || clients[0].Relay {
		t.Fatalf("subscribers %+v", clients)
	}
	rs.hub.Publish(wire.KindCatalog, []byte(`{"generation":5}`))
	if ev, err = r.Next(); err != nil || string(ev.Data) != `{"generation":5}` {
		t.Fatalf("second event %+v, %v", ev, err)
	}
	// Idle: pings (comment lines) arrive, and no event.
	next := make(chan error, 1)
	before := lines.Load()
	go func() { _, err := r.Next(); next <- err }()
	waitFor(t, func() bool { return lines.Load() >= before+4 }, "pings on the idle stream")
	close(rs.closing)
	if err := <-next; err != io.EOF {
		t.Fatalf("after closing: %v, want the stream to end", err)
	}
	waitFor(t, func() bool { return len(rs.hub.Clients()) == 0 }, "the subscriber to be removed")
}

func waitFor(t *testing.T, f func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A child relay's stream is a relay subscriber; a stream that loops is
// refused.
func TestEventStreamFromRelays(t *testing.T) {
	t.Parallel()
	rs := newRelayServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rs.URL+"/-/events", nil)
	req.Header.Set(wire.PathHeader, "branch-a")
	req.Header.Set(wire.NodeHeader, "a-1")
	sign(req, "/-/events", "branch-a", "a-1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	waitFor(t, func() bool { _, r := rs.hub.Count(); return r == 1 }, "a relay subscriber")
	if c := rs.hub.Clients()[0]; c.ID != "a-1" || c.Group != "branch-a" {
		t.Fatalf("subscriber %+v", c)
	}
	req, _ = http.NewRequest(http.MethodGet, rs.URL+"/-/events", nil)
	req.Header.Set(wire.PathHeader, "hq,branch-a")
	sign(req, "/-/events", "branch-a", "a-1", nil)
	loop, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	loop.Body.Close()
	if loop.StatusCode != http.StatusLoopDetected {
		t.Fatalf("looping stream: status %d, want 508", loop.StatusCode)
	}
	bad, err := http.Get(rs.URL + "/-/events?generation=x")
	if err != nil {
		t.Fatal(err)
	}
	bad.Body.Close()
	if bad.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad generation: status %d, want 400", bad.StatusCode)
	}
}

func TestReport(t *testing.T) {
	t.Parallel()
	rs := newRelayServer(t)
	post := func(ct, body string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, rs.URL+"/-/report", strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		sign(req, "/-/report", "branch-a", "a-1", []byte(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name, ct, body string
		want           int
	}{
		{"good", "application/json", `{"group":"branch-a","node":"a-1","generation":4,"ready":true,"future_field":1}`, http.StatusNoContent},
		{"not json", "application/json", `{"group":`, http.StatusBadRequest},
		{"no node", "application/json", `{"group":"branch-a"}`, http.StatusBadRequest},
		{"wrong type", "text/plain", `{}`, http.StatusUnsupportedMediaType},
		{"loop", "application/json", `{"group":"branch-a","node":"a-1","children":[{"group":"loop","node":"x"}]}`, http.StatusLoopDetected},
		{"too large", "application/json", `{"group":"` + strings.Repeat("g", maxReport) + `"}`, http.StatusRequestEntityTooLarge},
		{"another relay", "application/json", `{"group":"branch-a","node":"a-2"}`, http.StatusForbidden},
	} {
		if got := post(tc.ct, tc.body); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.reports) != 1 || rs.reports[0].Node != "a-1" {
		t.Fatalf("reports kept: %+v", rs.reports)
	}
}

// A request working from a generation the relay has not completed gets
// 503, so the requester asks another relay.
func TestGenerationBehind(t *testing.T) {
	t.Parallel()
	rs := newRelayServer(t)
	for _, tc := range []struct {
		gen  string
		want int
	}{{"", 200}, {"4", 200}, {"3", 200}, {"5", 503}, {"x", 400}} {
		req, _ := http.NewRequest(http.MethodGet, rs.URL+"/obj", nil)
		if tc.gen != "" {
			req.Header.Set("X-Relay-Generation", tc.gen)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("generation %q: status %d, want %d: %s", tc.gen, resp.StatusCode, tc.want, b)
		}
		if tc.want == 503 && (!bytes.Contains(b, []byte("generation_behind")) || resp.Header.Get("Retry-After") == "") {
			t.Errorf("behind: body %s, Retry-After %q", b, resp.Header.Get("Retry-After"))
		}
	}
}
