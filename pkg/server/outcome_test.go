package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/origin"
	"github.com/relayd/relayd/pkg/outcome"
	"github.com/relayd/relayd/pkg/wire"
)

func newOutcomeServer(t *testing.T, perAddr int) (*httptest.Server, *outcome.Table) {
	t.Helper()
	o, err := origin.New(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	tb := outcome.New(outcome.Config{PerAddr: perAddr}, clock.NewFake(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)))
	cfg := ContentConfig{Source: o, Relays: func() wire.Relays { return wire.Relays{} }, Group: "hq", MaxHops: 8, Outcome: tb.Put}
	srv := httptest.NewServer(NewContent(cfg, zerolog.New(zerolog.NewTestWriter(t))))
	t.Cleanup(srv.Close)
	return srv, tb
}

func postOutcome(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url+wire.OutcomePath, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Code string `json:"code"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Code
}

func TestOutcomePost(t *testing.T) {
	t.Parallel()
	srv, tb := newOutcomeServer(t, 0)
	for name, tc := range map[string]struct {
		body   string
		status int
		code   string
	}{
		"installed":     {`{"agent":"a-1","group":"branch-a","generation":3,"state":"installed"}`, 202, ""},
		"failed":        {`{"agent":"a-2","generation":3,"state":"failed","reason":"exit 1: disk full"}`, 202, ""},
		"bad state":     {`{"agent":"a-3","generation":3,"state":"done"}`, 400, "bad_outcome"},
		"no generation": {`{"agent":"a-3","state":"installed"}`, 400, "bad_outcome"},
		"unknown field": {`{"agent":"a-3","generation":3,"state":"installed","x":1}`, 400, "bad_outcome"},
		"trailing":      {`{"agent":"a-3","generation":3,"state":"installed"} {}`, 400, "bad_outcome"},
		"long reason":   {`{"agent":"a-3","generation":3,"state":"failed","reason":"` + strings.Repeat("r", 201) + `"}`, 400, "bad_outcome"},
		"escape in id":  {`{"agent":"a-\u001b[2J","generation":3,"state":"installed"}`, 400, "bad_outcome"},
		"oversized":     {`{"agent":"a-3","generation":3,"state":"failed","reason":"` + strings.Repeat("r", 4096) + `"}`, 413, "too_large"},
		"not json":      {`agent=a-3`, 400, "bad_outcome"},
	} {
		if status, code := postOutcome(t, srv.URL, tc.body); status != tc.status || code != tc.code {
			t.Errorf("%s: %d %q, want %d %q", name, status, code, tc.status, tc.code)
		}
	}
	if tb.Len() != 2 {
		t.Fatalf("table holds %d agents, want 2", tb.Len())
	}
	// An oversized body without Content-Length (chunked) is cut at the
	// limit. (Twice the limit, not more: a body larger than the socket
	// buffers may still be in the client's write when the server answers
	// and closes, and the client then sees a reset instead of the 413.)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+wire.OutcomePath, strings.NewReader(strings.Repeat(" ", 2*wire.MaxOutcomeSize)))
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked, twice the limit: %d", resp.StatusCode)
	}
	resp, err = http.Post(srv.URL+wire.OutcomePath, "text/plain", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain: %d", resp.StatusCode)
	}
}

// One address making up agent ids fills its share of the table, then
// gets 429.
func TestOutcomeAddrBudget(t *testing.T) {
	t.Parallel()
	srv, tb := newOutcomeServer(t, 50)
	accepted, limited := 0, 0
	for i := range 200 {
		status, code := postOutcome(t, srv.URL, fmt.Sprintf(`{"agent":"fake-%d","generation":1,"state":"installed"}`, i))
		switch {
		case status == http.StatusAccepted:
			accepted++
		case status == http.StatusTooManyRequests && code == "too_many_agents":
			limited++
		default:
			t.Fatalf("%d %q", status, code)
		}
	}
	if accepted != 50 || limited != 150 || tb.Len() != 50 {
		t.Fatalf("accepted %d, limited %d, table %d", accepted, limited, tb.Len())
	}
	// A known agent may still report.
	if status, _ := postOutcome(t, srv.URL, `{"agent":"fake-0","generation":2,"state":"installed"}`); status != http.StatusAccepted {
		t.Fatalf("known agent: %d", status)
	}
}
