// Push streams end to end (issue 18): bare streams from relayd loadgen
// against a real relay.
package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// loadgen --streams-only holds bare streams against real relays (from
// another loopback address too) and sees a publish reach all of them.
func TestLoadgenStreamsOnlyFollowAPublish(t *testing.T) {
	t.Parallel()
	tree, key, _ := publishedTree(t, map[string][]byte{"security/a.patch": makeData(673, 3000)})
	origin := startRelayd(t, "--mode", "origin", "--root", tree)
	relay := startRelayd(t, "--mode", "proxy", "--upstream", origin.URL, "--data-dir", t.TempDir(), "--cache-max", "1GiB")
	lg := startProc(t, "loadgen", []string{relaydBin, "loadgen", "--streams-only", "--relay", relay.URL, "--local-addr", "127.0.0.2",
		"--agents", "300", "--duration", "40s", "--stop-after-updates", "1", "--rate", "4000"}, nil, "")
	eventually(t, 20*time.Second, "all streams connected", func() error {
		if !strings.Contains(lg.Log(), "all 300 streams connected") {
			return fmt.Errorf("loadgen output: %q", lg.Log())
		}
		return nil
	})
	writeFiles(t, tree, map[string][]byte{"security/b.patch": makeData(674, 4000)})
	publish(t, tree, key)
	exited, err := lg.WaitExit(30 * time.Second)
	if !exited || err != nil {
		t.Fatalf("loadgen: exited %v, %v\n%s", exited, err, lg.Log())
	}
	for _, want := range []string{"generation 2: notified 300/300 within", "failed=0", "LOADGEN agents=300 connected=300", "300 started of 300"} {
		if !strings.Contains(lg.Log(), want) {
			t.Errorf("loadgen output lacks %q:\n%s", want, lg.Log())
		}
	}
}
