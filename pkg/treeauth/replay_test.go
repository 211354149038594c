package treeauth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/wire"
)

// A signature is taken once: the same header on a second request is a
// replay; two requests signed in the same second are not.
func TestReplayRefused(t *testing.T) {
	t.Parallel()
	k := testKey(t, 1)
	v := &Verifier{Key: k, Clock: clock.NewFake(now)}
	body := []byte(`{"group":"g","node":"n"}`)
	r := signedReport(k, body, now, "g", "n")
	if _, err := v.Verify(r, "/-/report"); err != nil {
		t.Fatal(err)
	}
	again := httptest.NewRequest(http.MethodPost, "/-/report", nil)
	again.Header.Set(wire.AuthHeader, r.Header.Get(wire.AuthHeader))
	if _, err := v.Verify(again, "/-/report"); !errors.Is(err, ErrReplayed) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("replay: %v, want ErrReplayed", err)
	}
	// The same claim signed again, in the same second: a new nonce.
	if _, err := v.Verify(signedReport(k, body, now, "g", "n"), "/-/report"); err != nil {
		t.Fatalf("a second report in the same second: %v", err)
	}
}

// The audience is the Host the child addressed: a header signed for one
// parent is refused by a request addressed to another.
func TestAudience(t *testing.T) {
	t.Parallel()
	k := testKey(t, 1)
	v := &Verifier{Key: k, Clock: clock.NewFake(now)}
	r := httptest.NewRequest(http.MethodGet, "http://parent-a:8080/-/events", nil)
	(&Signer{Key: k, Group: "g", Node: "n", Clock: clock.NewFake(now)}).Sign(r, "/-/events", nil)
	other := httptest.NewRequest(http.MethodGet, "http://parent-b:8080/-/events", nil)
	other.Header.Set(wire.AuthHeader, r.Header.Get(wire.AuthHeader))
	if _, err := v.Verify(other, "/-/events"); !errors.Is(err, ErrInvalid) || errors.Is(err, ErrReplayed) {
		t.Fatalf("another host: %v, want ErrInvalid", err)
	}
	r.Host = "PARENT-A:8080" // hosts compare without case
	if _, err := v.Verify(r, "/-/events"); err != nil {
		t.Fatal(err)
	}
}

// A full memory forgets the earliest-signed signature and refuses from
// then on anything signed no later: a replay of it does not get in.
func TestReplayFull(t *testing.T) {
	t.Parallel()
	k := testKey(t, 1)
	clk := clock.NewFake(now)
	v := &Verifier{Key: k, Clock: clk, MaxSeen: 3}
	var first *http.Request
	for i := range 3 {
		r := signedReport(k, nil, now.Add(time.Duration(i-3)*time.Second), "g", "n")
		if i == 0 {
			first = r
		}
		if _, err := v.Verify(r, "/-/report"); err != nil {
			t.Fatal(i, err)
		}
	}
	if len(v.seen.byT) != 3 {
		t.Fatalf("%d remembered, want 3", len(v.seen.byT))
	}
	if _, err := v.Verify(signedReport(k, nil, now, "g", "n"), "/-/report"); err != nil {
		t.Fatal(err)
	}
	if len(v.seen.byT) != 3 || len(v.seen.macs) != 3 {
		t.Fatalf("%d/%d remembered, want 3", len(v.seen.byT), len(v.seen.macs))
	}
	again := httptest.NewRequest(http.MethodPost, "/-/report", nil)
	again.Header.Set(wire.AuthHeader, first.Header.Get(wire.AuthHeader))
	if _, err := v.Verify(again, "/-/report"); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay of a forgotten signature: %v", err)
	}
	// Past the window, the old ones are forgotten.
	clk.Advance(MaxSkew + 10*time.Second)
	if _, err := v.Verify(signedReport(k, nil, clk.Now(), "g", "n"), "/-/report"); err != nil {
		t.Fatal(err)
	}
	if len(v.seen.byT) != 1 {
		t.Fatalf("%d remembered after the window, want 1", len(v.seen.byT))
	}
}
