package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/events"
)

// Beyond the hub's limits /-/events answers 503 too_many_streams with a
// Retry-After of 10 to 20 s, before the connection is taken over; a
// stream that closes frees its place.
func TestEventStreamLimits(t *testing.T) {
	t.Parallel()
	rs := newRelayServer(t)
	rs.hub.SetLimits(events.Limits{Total: 3}) // the 3rd place is kept for child relays
	open := func(id string) *http.Response {
		t.Helper()
		resp, err := http.Get(rs.URL + "/-/events?agent=" + id)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	var held []*http.Response
	for i := range 2 {
		resp := open(fmt.Sprint("a", i))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: status %d", i, resp.StatusCode)
		}
		held = append(held, resp)
	}
	resp := open("a2")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var body struct{ Code string }
	_ = json.Unmarshal(b, &body)
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusServiceUnavailable || body.Code != "too_many_streams" || ra < 10 || ra > 20 {
		t.Fatalf("third stream: %d %s, Retry-After %q; want 503 too_many_streams, 10-20", resp.StatusCode, b, resp.Header.Get("Retry-After"))
	}
	if !resp.Close {
		t.Error("the refusal leaves the connection open: a refused client would keep a place of the connection budget")
	}
	held[0].Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := open("a3")
		if resp.StatusCode == http.StatusOK {
			resp.Body.Close()
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("a closed stream did not free its place within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	held[1].Body.Close()
}
