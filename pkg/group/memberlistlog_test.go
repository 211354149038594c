package group

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/ratelog"
)

// TestMemberlistLoggerLimitsBadPackets: memberlist's lines about bad
// packets from the network, whatever their wording and sender, are one
// warning per interval for each of label, decrypt and malformed, with the
// count of those held back; other warnings keep their own keys and
// levels; debug lines are not limited.
func TestMemberlistLoggerLimitsBadPackets(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Unix(1000, 0))
	var buf bytes.Buffer
	ml := memberlistLogger(zerolog.New(&buf).Level(zerolog.DebugLevel), ratelog.New(clk, 10*time.Second))
	garbage := []string{
		`[ERR] memberlist: discarding packet with unacceptable label "x": from=127.0.0.1:%d`,
		`[ERR] memberlist: Decrypt packet failed: unsupported encryption version 3 from=127.0.0.1:%d`,
		`[ERR] memberlist: Failed to decode ping request: msgpack decode error [pos 1] from=127.0.0.1:%d`,
		`[WARN] memberlist: Got invalid checksum for UDP packet: %x, 1234`,
	}
	for i := range 20000 {
		ml.Printf(garbage[i%len(garbage)], i)
	}
	ml.Printf("[ERR] memberlist: Failed fallback TCP ping: io: read/write on closed pipe")
	ml.Printf("[ERR] memberlist: Failed fallback TCP ping: timeout 2")
	ml.Printf("[DEBUG] memberlist: Stream connection from=127.0.0.1:1")
	ml.Printf("[DEBUG] memberlist: Stream connection from=127.0.0.1:2")
	clk.Advance(10 * time.Second)
	ml.Printf(garbage[0], 1)

	var got []string
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %v %v", m["level"], m[ratelog.Field], strings.Fields(m["message"].(string))[0]))
	}
	want := []string{
		"warn <nil> discarding", // the first packet with another label
		"warn <nil> Decrypt",    // the first one that does not decrypt
		"warn <nil> Failed",     // the first malformed one
		"error <nil> Failed",    // a fault of its own: its level, its own key
		"debug <nil> Stream",    // not limited
		"debug <nil> Stream",
		"warn 4999 discarding", // the next interval: the count of the others
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
