package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestUpstreamCycleFailsLoudly: group a's upstream is group b and b's is
// a. The first request fails with 508 at once (no loop, no timeout), and
// both relays report the cycle in /v1/status.
func TestUpstreamCycleFailsLoudly(t *testing.T) {
	t.Parallel()
	addrA, addrB := freeAddr(t), freeAddr(t)
	adminA, adminB := freeAddr(t), freeAddr(t)
	a := startRelayd(t, "--mode", "proxy", "--group", "a", "--node", "a1", "--listen", addrA, "--admin", adminA,
		"--upstream", "http://"+addrB, "--data-dir", t.TempDir())
	b := startRelayd(t, "--mode", "proxy", "--group", "b", "--node", "b1", "--listen", addrB, "--admin", adminB,
		"--upstream", "http://"+addrA, "--data-dir", t.TempDir())
	c := newClient()
	r := get(t, c, http.MethodGet, a.URL+"/pool/pkg.deb")
	wantJSONError(t, r, http.StatusLoopDetected, "loop", "request into a cycle of upstreams")
	if !strings.Contains(string(r.body), "refused the request as a loop") {
		t.Fatalf("508 body does not explain the loop: %s", r.body)
	}
	for name, admin := range map[string]string{"a": adminA, "b": adminB} {
		st := get(t, c, http.MethodGet, "http://"+admin+"/v1/status")
		var doc struct {
			Loops *struct {
				Refused         int64  `json:"refused"`
				RefusedUpstream int64  `json:"refused_upstream"`
				LastRefused     string `json:"last_refused"`
				LastUpstream    string `json:"last_upstream"`
			} `json:"loops"`
		}
		if err := json.Unmarshal(st.body, &doc); err != nil {
			t.Fatalf("%s status: %v", name, err)
		}
		if doc.Loops == nil || doc.Loops.Refused+doc.Loops.RefusedUpstream == 0 {
			t.Fatalf("%s /v1/status does not report the loop: %s", name, st.body)
		}
	}
	// The relay that refused names the cycle in its log (at info: an
	// object request is not signed, anyone can claim a loop).
	if !strings.Contains(a.Log()+b.Log(), "X-Relay-Path already holds this group") {
		t.Fatal("no relay logged the loop")
	}
	// A request with too many hops is refused too.
	r = get(t, c, http.MethodGet, b.URL+"/x", "X-Relay-Path", "g1,g2,g3,g4,g5,g6,g7,g8")
	wantJSONError(t, r, http.StatusLoopDetected, "loop", "9th hop")
}
