package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestReportBodyShape(t *testing.T) {
	b := reportBody(1 << 20)
	if len(b) > 1<<20 || len(b) < 1<<20-128 {
		t.Fatalf("body of %d bytes for 1 MiB", len(b))
	}
	var r struct {
		Group    string `json:"group"`
		Children []struct {
			Group, Node string
		} `json:"children"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	// ~42k tiny entries per MiB: the shape that costs a decoder most.
	if len(r.Children) < 38000 || r.Group == "" {
		t.Fatalf("%d children, group %q", len(r.Children), r.Group)
	}
}

func TestProberSummary(t *testing.T) {
	p := &prober{timeout: 2 * time.Second}
	for i := range 100 {
		p.lat = append(p.lat, probeSample{d: time.Duration(i+1) * time.Millisecond, failed: i == 99, duringHold: i >= 90})
	}
	got := p.summary("healthz")
	for _, want := range []string{"healthz_p50_ms=51.0 ", "healthz_p99_ms=100.0", "healthz_max_ms=100.0", "healthz_fail=1 ", "healthz_probes=100",
		"healthz_hold_p50_ms=96.0", "healthz_hold_max_ms=100.0", "healthz_hold_fail=1 ", "healthz_hold_probes=10"} {
		if !strings.Contains(got+" ", want) {
			t.Errorf("summary %q lacks %q", got, want)
		}
	}
	if tally(map[int]int{503: 2, 200: 5}) != "200:5,503:2" {
		t.Errorf("tally %q", tally(map[int]int{503: 2, 200: 5}))
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, u := range []string{"http://192.0.2.1:80", "http://example.com", "http://[::2]:1"} {
		if _, err := loopbackURL(u); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
	if _, err := loopbackURL("http://127.0.0.2:9"); err != nil {
		t.Error(err)
	}
}
