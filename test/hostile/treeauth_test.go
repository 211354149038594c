package hostile

// Attack report after issue 11's first round, findings 3, 5 and 6: a
// captured tree signature replayed to hold the report slots, a signed
// body dripped a byte at a time, terminal escapes in a signed report, and
// a stranger raising the loop alert with X-Relay-Path.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/relayd/relayd/internal/proctest"
)

// dripPost sends a POST of a body of length bytes announced in full but
// written one byte per interval, and returns the status and error code of
// the answer and how long it took to come (status 0: the connection
// ended without one). It gives up after limit.
func dripPost(addr, path string, length int, interval, limit time.Duration, hdr http.Header) (int, string, time.Duration, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, "", 0, err
	}
	defer conn.Close()
	t0 := time.Now()
	_ = conn.SetDeadline(t0.Add(limit))
	var head strings.Builder
	fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", path, addr, length)
	for k, vs := range hdr {
		for _, v := range vs {
			fmt.Fprintf(&head, "%s: %s\r\n", k, v)
		}
	}
	head.WriteString("\r\n")
	if _, err := io.WriteString(conn, head.String()); err != nil {
		return 0, "", 0, err
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for range length {
			if _, err := conn.Write([]byte{' '}); err != nil {
				return
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, "", time.Since(t0), err
	}
	defer resp.Body.Close()
	var e struct{ Code string }
	_ = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&e)
	return resp.StatusCode, e.Code, time.Since(t0), nil
}

// TestReportReplayRefused (finding 3): a signature a real report was
// sent with, replayed on dripping connections, is refused at once with
// 403 tree_auth_replayed: it holds no decoding slot, and the real child's
// reports keep arriving. At 8d8f9f8 the replays were taken and held both
// slots while their bodies dripped; the child got 503.
func TestReportReplayRefused(t *testing.T) {
	t.Parallel()
	s := newTreeSetup(t)
	s.child(t, "branch-a", "a-1")
	body := []byte(`{"group":"evil","node":"r","generation":1,"ready":true}`)
	hdr := signed(s.key, s.origin.Addr, "evil", "r", body)
	if st, err := rawPost(s.origin.Addr, "/-/report", body, hdr); err != nil || st != http.StatusNoContent {
		t.Fatalf("the first use: status %d, %v; want 204", st, err)
	}
	type result struct {
		st   int
		code string
		took time.Duration
		err  error
	}
	results := make(chan result, 4)
	for range 4 {
		go func() {
			st, code, took, err := dripPost(s.origin.Addr, "/-/report", 1000, 2*time.Second, 20*time.Second, hdr)
			results <- result{st, code, took, err}
		}()
	}
	for range 4 {
		r := <-results
		if r.err != nil || r.st != http.StatusForbidden || r.code != "tree_auth_replayed" {
			t.Errorf("replayed signature: %d %q after %s (%v), want 403 tree_auth_replayed", r.st, r.code, r.took, r.err)
		}
	}
	// The real child's report is taken: its age in the tree stays fresh.
	proctest.Eventually(t, 20*time.Second, "a-1 reporting", func() error {
		m, ok := s.treeView(t)["a-1"]
		if !ok {
			return fmt.Errorf("a-1 not in the tree")
		}
		if d, err := time.ParseDuration(m.Age); err != nil || d > 3*time.Second {
			return fmt.Errorf("a-1 reported %s ago", m.Age)
		}
		return nil
	})
}

// TestReportDripEnds (finding 3): a report with a fresh, valid signature
// whose body drips a byte a second is answered 408 within the read
// deadline (a few seconds of grace at the minimum rate, 30 s at most),
// and a real child's report is taken after it. At 8d8f9f8 the body was
// read for as long as it dripped.
func TestReportDripEnds(t *testing.T) {
	t.Parallel()
	s := newTreeSetup(t)
	body := []byte(strings.Repeat(" ", 1000))
	hdr := signed(s.key, s.origin.Addr, "evil", "d", body)
	st, code, took, err := dripPost(s.origin.Addr, "/-/report", len(body), time.Second, 45*time.Second, hdr)
	t.Logf("dripped report: %d %q after %s (%v)", st, code, took.Round(time.Millisecond), err)
	if st != http.StatusRequestTimeout || code != "timeout" {
		t.Fatalf("dripped report: %d %q after %s (%v), want 408 timeout within 30 s", st, code, took, err)
	}
	s.child(t, "branch-a", "a-1")
	proctest.Eventually(t, 20*time.Second, "a-1 reporting", func() error {
		if _, ok := s.treeView(t)["a-1"]; !ok {
			return fmt.Errorf("a-1 not in the tree")
		}
		return nil
	})
}

// TestReportControlCharacters (finding 6): a signed report naming itself
// with terminal escapes is refused with 400 bad_report; at 8d8f9f8 it was
// kept and `relayd tree` printed the escapes raw.
func TestReportControlCharacters(t *testing.T) {
	t.Parallel()
	s := newTreeSetup(t)
	for _, node := range []string{"e\x1b[2J", "e\u202e", "e\x07"} {
		rep, _ := json.Marshal(map[string]any{"group": "evil", "node": node, "generation": 1, "ready": true})
		hdr := signed(s.key, s.origin.Addr, "evil", node, rep)
		if st, err := rawPost(s.origin.Addr, "/-/report", rep, hdr); err != nil || st != http.StatusBadRequest {
			t.Errorf("node %q: status %d, %v; want 400", node, st, err)
		}
	}
	rep := []byte(`{"group":"evil","node":"p","problem":"\u001b]0;owned\u0007"}`)
	if st, err := rawPost(s.origin.Addr, "/-/report", rep, signed(s.key, s.origin.Addr, "evil", "p", rep)); err != nil || st != http.StatusBadRequest {
		t.Errorf("problem with an escape: status %d, %v; want 400", st, err)
	}
	for node := range s.treeView(t) {
		if strings.HasPrefix(node, "e") || node == "p" {
			t.Errorf("the tree holds %q", node)
		}
	}
}

// TestLoopAlertStranger (finding 5): anyone's X-Relay-Path naming the
// relay's group gets 508, but is counted as a claim, not as a loop: no
// alert in the log, loops.refused stays 0. At 8d8f9f8 it was counted and
// logged as a loop at error level.
func TestLoopAlertStranger(t *testing.T) {
	t.Parallel()
	s := newTreeSetup(t)
	relay := startRelayd(t, "--mode", "proxy", "--node", "pa-1", "--group", "pa", "--upstream", s.origin.URL,
		"--data-dir", t.TempDir(), "--root", s.tree.Root, "--admin", "127.0.0.1:0")
	admin := "http://" + relay.WaitLogAddr(t, "admin listening")
	for range 3 {
		if a := do(http.MethodGet, relay.URL+"/security/kb-1.patch", 1<<20, "X-Relay-Path", "pa"); a.Status != http.StatusLoopDetected {
			t.Fatalf("a stranger's loop: status %d (%v), want 508", a.Status, a.Err)
		}
	}
	a := do(http.MethodGet, admin+"/v1/status", 1<<20)
	var st struct {
		Loops *struct {
			Refused int64 `json:"refused"`
			Claimed int64 `json:"claimed"`
		} `json:"loops"`
	}
	if err := json.Unmarshal(a.Body, &st); err != nil || st.Loops == nil {
		t.Fatalf("/v1/status: %v %s", err, a.Body)
	}
	if st.Loops.Refused != 0 || st.Loops.Claimed != 3 {
		t.Errorf("loops refused %d, claimed %d; want 0 and 3", st.Loops.Refused, st.Loops.Claimed)
	}
	if strings.Contains(relay.Log(), "refused a request that loops") {
		t.Error("a stranger's X-Relay-Path raised the loop alert")
	}
}

// TestGossipUnkeyedWarns (finding 8): a relay gossiping without
// gossip-key-file says at start that anyone can join its group, and
// /v1/status keeps saying it; with a key it does not. At 8d8f9f8 nothing
// warned.
func TestGossipUnkeyedWarns(t *testing.T) {
	t.Parallel()
	status := func(admin string) []string {
		var st struct {
			Warnings []string `json:"warnings"`
		}
		a := do(http.MethodGet, admin+"/v1/status", 1<<20)
		if err := json.Unmarshal(a.Body, &st); err != nil {
			t.Fatalf("/v1/status: %v %s", err, a.Body)
		}
		return st.Warnings
	}
	open := startRelayd(t, "--mode", "proxy", "--node", "g-1", "--group", "g", "--upstream", "http://127.0.0.1:1",
		"--data-dir", t.TempDir(), "--gossip", "127.0.0.1:0", "--admin", "127.0.0.1:0")
	admin := "http://" + open.WaitLogAddr(t, "admin listening")
	if !strings.Contains(open.Log(), "gossip without gossip-key-file") {
		t.Error("no warning logged for gossip without a key")
	}
	if w := status(admin); len(w) != 1 || !strings.Contains(w[0], "gossip-key-file") {
		t.Errorf("/v1/status warnings %q", w)
	}
	keys := t.TempDir()
	if out, stderr, err := proctest.Run(t, 30*time.Second, relaydBin, "keygen", "--gossip", "--out", keys); err != nil {
		t.Fatalf("relayd keygen --gossip: %v\n%s%s", err, out, stderr)
	}
	keyed := startRelayd(t, "--mode", "proxy", "--node", "g-2", "--group", "g", "--upstream", "http://127.0.0.1:1",
		"--data-dir", t.TempDir(), "--gossip", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--gossip-key-file", keys+"/gossip.key")
	admin = "http://" + keyed.WaitLogAddr(t, "admin listening")
	if w := status(admin); len(w) != 0 || strings.Contains(keyed.Log(), "gossip without gossip-key-file") {
		t.Errorf("a keyed relay warns: %q", w)
	}
}

// validReport is a report of 20,000 relays (the limit) padded with URLs
// to about size bytes: the dearest report a parent decodes and keeps.
func validReport(group, node string, size int) []byte {
	const n = 20000
	pad := strings.Repeat("p", max(size/n-90, 1))
	var b strings.Builder
	fmt.Fprintf(&b, `{"group":%q,"node":%q,"generation":1,"ready":true,"children":[`, group, node)
	for i := range n - 1 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"group":"v%d","node":"n","url":"http://x/%s"}`, i, pad)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// TestReportFloodSignedValid (finding 9, worst case): ten concurrent
// signed reports of 20,000 relays and ~7.5 MB each, all within the
// limits: one is kept (~15 MiB held in the tree: what the 20,000-relay
// bound allows), the others decoded whole one at a time and refused as
// the largest. Measured: +66 MiB (+128 MiB without the collections
// between and after large decodes). The 50 MiB target holds for the
// attack's reports (TestReportFloodSigned, +18 MiB) but not for this
// case; the bound here is 80 MiB, so that a regression to piling up
// garbage fails.
func TestReportFloodSignedValid(t *testing.T) {
	t.Parallel()
	s := newTreeSetup(t)
	bodies := make([][]byte, 10)
	for i := range bodies {
		bodies[i] = validReport("evil", fmt.Sprint("v", i), floodSize)
	}
	statuses, rise := floodRSSEach(t, s.origin, bodies, func(j int) http.Header {
		return signed(s.key, s.origin.Addr, "evil", fmt.Sprint("v", j), bodies[j])
	})
	t.Logf("%d bytes each; statuses %v; RSS rose %.1f MiB", len(bodies[0]), statuses, float64(rise)/(1<<20))
	for j, st := range statuses {
		if st != http.StatusNoContent && st != http.StatusBadRequest && st != http.StatusServiceUnavailable {
			t.Errorf("report %d: status %d, want 204, 400 (the largest) or 503 busy", j, st)
		}
	}
	if rise > 80<<20 {
		t.Errorf("RSS rose %d MiB under ten signed valid 8 MiB reports, want at most 80", rise>>20)
	}
}
