package loadgen

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/relayd/relayd/internal/tuftest"

	"github.com/relayd/relayd/pkg/agent"
)

// testRoot is a valid self-signed TUF root, one key for every role.
func testRoot(t *testing.T) []byte { return tuftest.Root(t) }

// A run against a relay that is not there starts every agent, counts
// each one's failed sync, and fails, with the summary line scripts read.
func TestRunCountsFailedAgents(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := agent.DefaultConfig()
	cfg.Relays, cfg.Root, cfg.RetryBudget = []string{"http://" + addr}, testRoot(t), 10*time.Millisecond
	var out bytes.Buffer
	err = Run(context.Background(), Options{Agents: 3, Duration: 5 * time.Second, Concurrency: 4, Rate: 1000, IDPrefix: "t-"}, cfg, &out)
	if err == nil || !strings.Contains(err.Error(), "no agent completed a sync") {
		t.Fatalf("err = %v, want no agent completed a sync", err)
	}
	for _, want := range []string{"agents: 3 started of 3; syncs: 0 ok, 3 failed", "LOADGEN agents=3 connected=0 ok=0 failed=3"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
