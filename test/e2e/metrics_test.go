package e2e

import (
	"bufio"
	"bytes"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// metric returns the value of the series name{labels} ("" for none) in a
// Prometheus text exposition, and whether it is there.
func metric(body []byte, series string) (float64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// TestMetricsMove: the relayd_* series exist, move with traffic, and
// carry no unbounded labels.
func TestMetricsMove(t *testing.T) {
	t.Parallel()
	origin := startOrigin(t)
	data := makeData(5, 100<<10)
	origin.set("/pool/m.deb", newObject(data, "max-age=3600"))
	relay := startRelayd(t, "--mode", "proxy", "--upstream", origin.URL, "--data-dir", t.TempDir(), "--admin", "127.0.0.1:0")
	admin := "http://" + relay.WaitLogAddr(t, "admin listening")
	c := newClient()
	scrape := func() []byte { return get(t, c, http.MethodGet, admin+"/metrics").body }
	before := scrape()
	for _, s := range []string{`relayd_requests_total{result="miss"}`, `relayd_bytes_served_total`, `relayd_upstream_bytes_total`,
		`relayd_fill_latency_seconds_count`, `relayd_upstream_failovers_total`, `relayd_agents_connected`, `relayd_store_blobs`} {
		if v, ok := metric(before, s); !ok || v != 0 {
			t.Errorf("before traffic: %s = %v (present %v), want 0", s, v, ok)
		}
	}
	wantObject(t, get(t, c, http.MethodGet, relay.URL+"/pool/m.deb"), data, "GET (miss)")
	wantObject(t, get(t, c, http.MethodGet, relay.URL+"/pool/m.deb"), data, "GET (hit)")
	// The origin's 404 is passed on (issue 14): a miss that went upstream,
	// and an error status; its body crossed the WAN too.
	notFound := get(t, c, http.MethodGet, relay.URL+"/pool/none.deb")
	if notFound.status != http.StatusNotFound {
		t.Fatalf("missing object: status %d, want the origin's 404", notFound.status)
	}
	after := scrape()
	for s, want := range map[string]float64{
		`relayd_requests_total{result="miss"}`: 2, `relayd_requests_total{result="hit"}`: 1, `relayd_requests_total{result="error"}`: 1,
		`relayd_bytes_served_total`: float64(2 * len(data)), `relayd_upstream_bytes_total`: float64(len(data) + len(notFound.body)),
		`relayd_fill_latency_seconds_count`: 2, `relayd_store_blobs`: 1,
	} {
		if v, ok := metric(after, s); !ok || v != want {
			t.Errorf("after traffic: %s = %v (present %v), want %v", s, v, ok, want)
		}
	}
	// Labels: only a fixed set of names, never a path.
	labels := regexp.MustCompile(`^relayd_[a-z_]+\{([^}]*)\}`)
	allowed := map[string]bool{"result": true, "state": true, "le": true, "kind": true, "class": true, "reason": true,
		"ring": true, "decision": true} // ring: the plan's ring names, at most wire.MaxRings
	for _, line := range strings.Split(string(after), "\n") {
		m := labels.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for _, kv := range strings.Split(m[1], ",") {
			name, value, _ := strings.Cut(kv, "=")
			if !allowed[name] || strings.Contains(value, "/") {
				t.Errorf("metric line %q has label %s=%s", line, name, value)
			}
		}
	}
}
