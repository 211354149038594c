package hostile

// Issue 11 rows 1, 6 and the relay half of 8: reports and child-relay
// event streams from strangers, and from a relay that holds the tree key
// but lies.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relayd/relayd/internal/proctest"
	"github.com/relayd/relayd/pkg/treeauth"
	"github.com/relayd/relayd/pkg/wire"
)

// treeSetup is an origin holding the tree key with an admin port, and
// what it takes to sign as a relay of its tree.
type treeSetup struct {
	tree    *tree
	keyFile string
	key     *treeauth.Key
	origin  *proctest.Proc
	admin   string // http://host:port of the origin's admin API
}

func newTreeSetup(t *testing.T) *treeSetup {
	t.Helper()
	s := &treeSetup{tree: publishTree(t, map[string][]byte{"security/kb-1.patch": randomBytes(1, 4000)})}
	dir := filepath.Join(t.TempDir(), "keys")
	if out, stderr, err := proctest.Run(t, 30*time.Second, relaydBin, "keygen", "--tree", "--out", dir); err != nil {
		t.Fatalf("relayd keygen --tree: %v\n%s%s", err, out, stderr)
	}
	s.keyFile = filepath.Join(dir, treeauth.KeyFile)
	var err error
	if s.key, err = treeauth.LoadKey(s.keyFile); err != nil {
		t.Fatal(err)
	}
	s.origin = startRelayd(t, "--mode", "origin", "--root", s.tree.Dir, "--node", "origin", "--admin", "127.0.0.1:0",
		"--tree-key-file", s.keyFile)
	s.admin = "http://" + s.origin.WaitLogAddr(t, "admin listening")
	return s
}

// child starts a real child relay of the tree (it reports every second).
func (s *treeSetup) child(t *testing.T, group, node string) *proctest.Proc {
	t.Helper()
	return startRelayd(t, "--mode", "proxy", "--node", node, "--group", group, "--upstream", s.origin.URL,
		"--data-dir", t.TempDir(), "--root", s.tree.Root, "--tree-key-file", s.keyFile, "--report-interval", "1s")
}

// tree reads the origin's /v1/tree: each relay's generation, lag, ahead
// flag, agents and report age, by node.
type memberView struct {
	Group      string
	Generation uint64 `json:"generation"`
	Lag        uint64 `json:"lag"`
	Ahead      bool   `json:"ahead"`
	Agents     int    `json:"agents"`
	Age        string `json:"age"`
}

func (s *treeSetup) treeView(t *testing.T) map[string]memberView {
	t.Helper()
	a := do(http.MethodGet, s.admin+"/v1/tree", 16<<20)
	if a.Err != nil || a.Status != http.StatusOK {
		t.Fatalf("/v1/tree: %d %v", a.Status, a.Err)
	}
	type group struct {
		Group   string `json:"group"`
		Members []struct {
			Node string `json:"node"`
			memberView
		} `json:"members"`
		Children []json.RawMessage `json:"children"`
	}
	out := map[string]memberView{}
	var walk func([]byte)
	walk = func(b []byte) {
		var g group
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatalf("/v1/tree: %v", err)
		}
		for _, m := range g.Members {
			m.memberView.Group = g.Group
			out[m.Node] = m.memberView
		}
		for _, c := range g.Children {
			walk(c)
		}
	}
	walk(a.Body)
	return out
}

// hostileReport is a report of about size bytes made of tiny children
// (~335k in 8 MiB), far past the 20,000-relay limit.
func hostileReport(group, node string, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"group":%q,"node":%q,"children":[`, group, node)
	for i := 0; b.Len() < size-64; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"group":"g","node":"%d"}`, i)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// fillerReport is a report of exactly n relays (the sender and n-1
// children).
func fillerReport(group, node string, n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"group":%q,"node":%q,"generation":1,"ready":true,"children":[`, group, node)
	for i := range n - 1 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"group":"fake-%d","node":"f"}`, i)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// rawPost sends a POST over its own connection, writing the body while
// it reads the answer, as a flooder does: a server that answers without
// reading the body is seen answering. It returns the status (0 if none
// came).
func rawPost(addr, path string, body []byte, hdr http.Header) (int, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	var head strings.Builder
	fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", path, addr, len(body))
	for k, vs := range hdr {
		for _, v := range vs {
			fmt.Fprintf(&head, "%s: %s\r\n", k, v)
		}
	}
	head.WriteString("\r\n")
	go func() {
		// Errors are expected: the server may close the connection
		// without reading the rest.
		_, _ = io.WriteString(conn, head.String())
		_, _ = conn.Write(body)
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// signed returns the headers of a report signed with key as group/node,
// for the relay at addr (the audience), each call a new signature.
func signed(key *treeauth.Key, addr, group, node string, body []byte) http.Header {
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/-/report", nil)
	(&treeauth.Signer{Key: key, Group: group, Node: node}).Sign(req, "/-/report", body)
	return http.Header{wire.AuthHeader: {req.Header.Get(wire.AuthHeader)}}
}

// floodRSS sends n concurrent reports of body with hdr to the origin and
// returns their statuses and how far the origin's RSS rose above what it
// was before (the peak, sampled every 10 ms).
func floodRSS(t *testing.T, p *proctest.Proc, n int, body []byte, hdr func() http.Header) ([]int, int64) {
	t.Helper()
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = body
	}
	var h func(int) http.Header
	if hdr != nil {
		h = func(int) http.Header { return hdr() }
	}
	return floodRSSEach(t, p, bodies, h)
}

// floodRSSEach is floodRSS with a body and headers of each report's own.
func floodRSSEach(t *testing.T, p *proctest.Proc, bodies [][]byte, hdr func(int) http.Header) ([]int, int64) {
	t.Helper()
	n := len(bodies)
	base, err := proctest.RSS(p.Pid())
	if err != nil {
		t.Fatal(err)
	}
	var peak atomic.Int64
	peak.Store(base)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		for {
			if rss, err := proctest.RSS(p.Pid()); err == nil && rss > peak.Load() {
				peak.Store(rss)
			}
			select {
			case <-stop:
				return
			case <-tk.C:
			}
		}
	}()
	statuses := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		var h http.Header
		if hdr != nil {
			h = hdr(i)
		}
		wg.Go(func() { statuses[i], errs[i] = rawPost(p.Addr, "/-/report", bodies[i], h) })
	}
	wg.Wait()
	// Let a lagging GC or a late allocation show.
	time.Sleep(200 * time.Millisecond)
	close(stop)
	<-sampled
	for i, err := range errs {
		if err != nil {
			t.Errorf("report %d: %v", i, err)
		}
	}
	return statuses, peak.Load() - base
}

const floodSize = 8<<20 - 1024 // under the 8 MiB cap: it must be read to be refused

// TestReportFloodUnauthenticated (row 1): ten concurrent 8 MiB reports
// of ~335k tiny children without the tree credential are all refused
// with 401 before their bodies are read; the relay's RSS barely moves.
// At 8d8f9f8 each was decoded whole: ~2.3 GB for ten.
func TestReportFloodUnauthenticated(t *testing.T) {
	t.Parallel()
	s := newTreeSetup(t)
	body := hostileReport("evil", "e", floodSize)
	statuses, rise := floodRSS(t, s.origin, 10, body, nil)
	t.Logf("statuses %v; RSS rose %.1f MiB", statuses, float64(rise)/(1<<20))
	for i, st := range statuses {
		if st != http.StatusUnauthorized {
			t.Errorf("report %d: status %d, want 401", i, st)
		}
	}
	if rise > 50<<20 {
		t.Errorf("RSS rose %d MiB under ten unauthenticated 8 MiB reports, want at most 50", rise>>20)
	}
}

// TestReportFloodSigned (row 1, with the key): the same flood signed with
// the tree key is refused with 4xx at the 20,000-relay limit while it is
// read, two decodes at a time, and the RSS stays bounded.
func TestReportFloodSigned(t *testing.T) {
	t.Parallel()
	s := newTreeSetup(t)
	body := hostileReport("evil", "e", floodSize)
	statuses, rise := floodRSS(t, s.origin, 10, body, func() http.Header { return signed(s.key, s.origin.Addr, "evil", "e", body) })
	t.Logf("statuses %v; RSS rose %.1f MiB", statuses, float64(rise)/(1<<20))
	for i, st := range statuses {
		if st/100 != 4 {
			t.Errorf("report %d: status %d, want 4xx", i, st)
		}
	}
	if rise > 50<<20 {
		t.Errorf("RSS rose %d MiB under ten signed 8 MiB reports, want at most 50", rise>>20)
	}
	// And one past 8 MiB is refused from its Content-Length.
	big := append(bytes.Clone(body), bytes.Repeat([]byte(" "), 2048)...)
	if st, err := rawPost(s.origin.Addr, "/-/report", big, signed(s.key, s.origin.Addr, "evil", "e", big)); err != nil || st != http.StatusRequestEntityTooLarge {
		t.Errorf("a signed report past 8 MiB: status %d, %v; want 413", st, err)
	}
}

// TestFakeGenerationReport (row 6): a report claiming generation 999999
// and a million agents is refused without the key; sent with the key it
// is shown as ahead, and the real relays show no lag.
func TestFakeGenerationReport(t *testing.T) {
	t.Parallel()
	s := newTreeSetup(t)
	s.child(t, "branch-a", "a-1")
	proctest.Eventually(t, 30*time.Second, "a-1 in the origin's tree at generation 1", func() error {
		if m, ok := s.treeView(t)["a-1"]; !ok || m.Generation != 1 {
			return fmt.Errorf("a-1: %+v (present %v)", m, ok)
		}
		return nil
	})
	fake := []byte(`{"group":"evil","node":"fake","generation":999999,"ready":true,"agents":1000000,"sent":"` +
		time.Now().UTC().Format(time.RFC3339) + `"}`)
	if st, err := rawPost(s.origin.Addr, "/-/report", fake, nil); err != nil || st != http.StatusUnauthorized {
		t.Fatalf("fake report without the key: status %d, %v; want 401", st, err)
	}
	if _, ok := s.treeView(t)["fake"]; ok {
		t.Fatal("the unauthenticated fake is in the tree")
	}
	// Signed as another relay than the one it describes: refused too.
	if st, err := rawPost(s.origin.Addr, "/-/report", fake, signed(s.key, s.origin.Addr, "branch-a", "a-1", fake)); err != nil || st != http.StatusForbidden {
		t.Fatalf("fake report signed as a-1: status %d, %v; want 403", st, err)
	}
	// A relay holding the key can lie about itself, not about the others.
	if st, err := rawPost(s.origin.Addr, "/-/report", fake, signed(s.key, s.origin.Addr, "evil", "fake", fake)); err != nil || st != http.StatusNoContent {
		t.Fatalf("fake report with the key: status %d, %v; want 204", st, err)
	}
	view := s.treeView(t)
	if m := view["fake"]; !m.Ahead || m.Lag != 0 {
		t.Errorf("the fake: %+v, want ahead with lag 0", m)
	}
	if m := view["a-1"]; m.Lag != 0 || m.Ahead {
		t.Errorf("the real a-1: %+v, want lag 0 (the origin serves generation 1)", m)
	}
	if m := view["origin"]; m.Lag != 0 {
		t.Errorf("the origin itself: %+v, want lag 0", m)
	}
}

// TestRelayStreamClaimWithoutKey (row 8, relay half): a stream claiming
// to be the real child relay (its group in X-Relay-Path, its node in
// X-Relay-Node) without the key is refused with 401, and the real child
// keeps its stream.
func TestRelayStreamClaimWithoutKey(t *testing.T) {
	t.Parallel()
	s := newTreeSetup(t)
	child := s.child(t, "branch-a", "a-1")
	type conn struct {
		ID    string    `json:"id"`
		Relay bool      `json:"relay"`
		Group string    `json:"group"`
		Since time.Time `json:"since"`
	}
	relays := func() []conn {
		var doc struct {
			Connected []conn `json:"connected"`
		}
		a := do(http.MethodGet, s.admin+"/v1/agents", 1<<20)
		if err := json.Unmarshal(a.Body, &doc); err != nil {
			t.Fatalf("/v1/agents: %v: %s", err, a.Body)
		}
		var out []conn
		for _, c := range doc.Connected {
			if c.Relay {
				out = append(out, c)
			}
		}
		return out
	}
	var real conn
	proctest.Eventually(t, 30*time.Second, "a-1's relay stream at the origin", func() error {
		rs := relays()
		if len(rs) != 1 || rs[0].ID != "a-1" || rs[0].Group != "branch-a" {
			return fmt.Errorf("relay streams %+v", rs)
		}
		real = rs[0]
		return nil
	})
	for range 5 {
		a := do(http.MethodGet, s.origin.URL+"/-/events", 1<<10, "X-Relay-Path", "branch-a", "X-Relay-Node", "a-1")
		if a.Status != http.StatusUnauthorized {
			t.Fatalf("a stranger claiming a-1's stream: status %d %s, want 401", a.Status, a.Body)
		}
	}
	proctest.Consistently(t, 2*time.Second, "a-1 keeps its stream", func() error {
		rs := relays()
		if len(rs) != 1 || !rs[0].Since.Equal(real.Since) {
			return fmt.Errorf("relay streams %+v, want a-1's from %s", rs, real.Since)
		}
		return nil
	})
	if n := strings.Count(child.Log(), `"event stream closed"`); n != 0 {
		t.Errorf("a-1's stream was closed %d times", n)
	}
}

// TestFillerDoesNotKeepChildrenOut (row 6): a relay holding the key that
// re-posts a report filling the parent's whole budget (20,000 relays)
// does not keep a new real child out of the tree: the filler is the one
// refused. At 8d8f9f8 the newcomer was refused for as long as the filler
// re-posted.
func TestFillerDoesNotKeepChildrenOut(t *testing.T) {
	t.Parallel()
	s := newTreeSetup(t)
	s.child(t, "branch-a", "a-1")
	proctest.Eventually(t, 30*time.Second, "a-1 in the origin's tree", func() error {
		if _, ok := s.treeView(t)["a-1"]; !ok {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	filler := fillerReport("evil", "filler", 19_999) // with a-1: the whole budget
	hdr := func() http.Header { return signed(s.key, s.origin.Addr, "evil", "filler", filler) }
	if st, err := rawPost(s.origin.Addr, "/-/report", filler, hdr()); err != nil || st != http.StatusNoContent {
		t.Fatalf("the filler's first report: %d %v, want 204 (it fits)", st, err)
	}
	stop := make(chan struct{})
	var refused, taken atomic.Int32
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
			switch st, _ := rawPost(s.origin.Addr, "/-/report", filler, hdr()); st {
			case http.StatusNoContent:
				taken.Add(1)
			case http.StatusBadRequest:
				refused.Add(1)
			}
		}
	})
	defer func() { close(stop); wg.Wait() }()
	s.child(t, "branch-b", "b-1")
	proctest.Eventually(t, 30*time.Second, "the new child b-1 in the origin's tree while the filler re-posts", func() error {
		if _, ok := s.treeView(t)["b-1"]; !ok {
			return fmt.Errorf("b-1 not in the tree (filler re-posts taken %d, refused %d)", taken.Load(), refused.Load())
		}
		return nil
	})
	proctest.Consistently(t, 3*time.Second, "a-1 and b-1 stay in the tree", func() error {
		v := s.treeView(t)
		for _, n := range []string{"a-1", "b-1"} {
			if m, ok := v[n]; !ok {
				return fmt.Errorf("%s gone from the tree", n)
			} else if d, err := time.ParseDuration(m.Age); err != nil || d > 3*time.Second {
				return fmt.Errorf("%s's report is %q old", n, m.Age)
			}
		}
		return nil
	})
	if refused.Load() == 0 {
		t.Errorf("the filler's re-posts were never refused (taken %d)", taken.Load())
	}
}
