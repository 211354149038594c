package hostile

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/relayd/relayd/internal/proctest"
	"github.com/relayd/relayd/pkg/group"
)

// TestGossipGarbageDoesNotFloodTheLog (issue 11 row 9): 20,000 garbage
// UDP packets to a relay's gossip port gave 10,137 error-level lines at
// 8d8f9f8. Now the relay logs a handful of lines about them, with or
// without a gossip key, and stays up.
func TestGossipGarbageDoesNotFloodTheLog(t *testing.T) {
	t.Parallel()
	tr := publishTree(t, map[string][]byte{"a": randomBytes(3, 100)})
	evil := startEvil(t, tr.Dir)
	keyFile, err := group.GenerateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no gossip key", nil},
		{"gossip key", []string{"--gossip-key-file", keyFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gossip := proctest.FreeTCPUDPAddr(t)
			args := append([]string{"--mode", "proxy", "--upstream", evil.URL, "--data-dir", t.TempDir(), "--cache-max", "64MiB",
				"--node", "flooded", "--group", "hq", "--gossip", gossip, "--join="}, tc.args...)
			relay := startRelayd(t, args...)
			consumed := floodUDP(t, gossip, "relayd/hq", 20_000)
			if consumed < 10_000 {
				t.Fatalf("the relay read only %d of 20000 packets (the rest dropped by the kernel): the test proves nothing", consumed)
			}
			n, sample := gossipLines(relay.Log())
			if n > 5 {
				t.Fatalf("%d memberlist warning/error lines for %d garbage packets (want at most 5); e.g.\n%s", n, consumed, sample)
			}
			t.Logf("%d garbage packets read, %d log lines about them:\n%s", consumed, n, sample)
			if a := do("GET", relay.URL+"/-/healthz", 1<<10); a.Status != 200 {
				t.Fatalf("/-/healthz after the flood: %d %v", a.Status, a.Err)
			}
		})
	}
}

// gossipLines counts memberlist's lines at warn or above in a relay's log
// and returns a few of them.
func gossipLines(log string) (int, string) {
	n, sample := 0, ""
	for _, m := range proctest.LogLines(log) {
		if m["from"] != "memberlist" || (m["level"] != "warn" && m["level"] != "error") {
			continue
		}
		if n++; n <= 5 {
			sample += fmt.Sprintln(m)
		}
	}
	return n, sample
}

// floodUDP sends n garbage datagrams of random lengths to addr: a third
// random bytes, a third under another label, a third under the group's
// label (known to anyone on the LAN) with a memberlist message type and
// garbage, which reaches decryption or decoding. It sends in batches that
// wait for the socket's queue to drain, and returns how many the receiver
// read (sent minus the kernel's drops on that socket).
func floodUDP(t testing.TB, addr, label string, n int) int {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, port, _ := net.SplitHostPort(addr)
	_, drops0 := udpQueue(t, port)
	r := rand.New(rand.NewPCG(11, 12))
	buf := make([]byte, 1400)
	const batch = 250
	for i := 0; i < n; i++ {
		p := buf[:1+r.IntN(len(buf)-1)]
		for j := range p {
			p[j] = byte(r.UintN(256))
		}
		switch i % 3 {
		case 1:
			p, err = memberlist.AddLabelHeaderToPacket(p, "relayd/other")
		case 2:
			p[0] = byte(i % 20) // a message type memberlist knows, then garbage
			p, err = memberlist.AddLabelHeaderToPacket(p, label)
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(p); err != nil {
			t.Fatalf("send packet %d: %v", i, err)
		}
		if i%batch == batch-1 {
			proctest.Eventually(t, 10*time.Second, "the relay to read its gossip socket", func() error {
				if q, _ := udpQueue(t, port); q > 0 {
					return fmt.Errorf("%d bytes queued", q)
				}
				return nil
			})
		}
	}
	proctest.Eventually(t, 10*time.Second, "the relay to read its gossip socket", func() error {
		if q, _ := udpQueue(t, port); q > 0 {
			return fmt.Errorf("%d bytes queued", q)
		}
		return nil
	})
	_, drops := udpQueue(t, port)
	return n - int(drops-drops0)
}

// udpQueue reads the receive queue (bytes) and the drop count of the UDP
// socket bound to 127.0.0.1:port from /proc/net/udp.
func udpQueue(t testing.TB, port string) (queued, drops int64) {
	t.Helper()
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("0100007F:%04X", p)
	f, err := os.Open("/proc/net/udp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local rem st tx_queue:rx_queue tr:when retrnsmt uid timeout inode ref pointer drops
		f := strings.Fields(sc.Text())
		if len(f) < 13 || f[1] != want {
			continue
		}
		_, rx, _ := strings.Cut(f[4], ":")
		queued, _ = strconv.ParseInt(rx, 16, 64)
		drops, _ = strconv.ParseInt(f[len(f)-1], 10, 64)
		return queued, drops
	}
	t.Fatalf("no UDP socket on 127.0.0.1:%s in /proc/net/udp", port)
	return 0, 0
}

// TestLoopRefusalsDoNotFloodTheLog: anyone can send requests that claim
// to have crossed the relay's own group; each is refused (508) and
// counted, but the log says so once per interval, not once per request.
func TestLoopRefusalsDoNotFloodTheLog(t *testing.T) {
	t.Parallel()
	tr := publishTree(t, map[string][]byte{"a": randomBytes(5, 100)})
	evil := startEvil(t, tr.Dir)
	relay := startRelayd(t, "--mode", "proxy", "--upstream", evil.URL, "--data-dir", t.TempDir(), "--group", "hq", "--node", "hq1")
	const n = 2000
	for i := range n {
		a := do("GET", fmt.Sprintf("%s/x/%d", relay.URL, i), 4096, "X-Relay-Path", "branch,hq,branch")
		if a.Status != 508 {
			t.Fatalf("request %d claiming to have crossed hq: status %d, %v; want 508", i, a.Status, a.Err)
		}
	}
	// Unsigned, these are claims (anyone can send the header): logged at
	// info once per interval, never as the operator alert.
	if lines := countMessages(relay.Log(), "refused a request whose X-Relay-Path already holds this group (unauthenticated: a loop, or anyone's header)"); lines < 1 || lines > 3 {
		t.Fatalf("%d log lines for %d refused loop claims, want 1 to 3", lines, n)
	}
	if lines := countMessages(relay.Log(), "refused a request that loops: check the upstream configuration"); lines != 0 {
		t.Fatalf("%d operator alerts for unsigned loop claims, want 0", lines)
	}
}

// TestUpstreamFailuresDoNotFloodTheLog: while its upstream is down, every
// agent request fails over (and fails), but the relay warns about the
// upstream once per interval, not once per request.
func TestUpstreamFailuresDoNotFloodTheLog(t *testing.T) {
	t.Parallel()
	down := "http://" + proctest.FreeTCPUDPAddr(t) // nothing listens there
	relay := startRelayd(t, "--mode", "proxy", "--upstream", down, "--data-dir", t.TempDir())
	const n = 500
	for i := range n {
		if a := do("GET", fmt.Sprintf("%s/x/%d", relay.URL, i), 4096); a.Status < 500 {
			t.Fatalf("request %d with the upstream down: status %d, %v; want 5xx", i, a.Status, a.Err)
		}
	}
	if lines := countMessages(relay.Log(), "upstream failed, trying the next"); lines < 1 || lines > 3 {
		t.Fatalf("%d 'upstream failed' lines for %d failed requests, want 1 to 3", lines, n)
	}
}

// countMessages counts the JSON log lines of log whose message is msg.
func countMessages(log, msg string) int {
	n := 0
	for _, m := range proctest.LogLines(log) {
		if m["message"] == msg {
			n++
		}
	}
	return n
}
