package hostile

// Stream floods and identity theft on GET /-/events (issue 11 rows 4 and
// 8): connection budgets under a low descriptor limit, a stranger reusing
// an agent's id, and two relays sharing one group and node name.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relayd/relayd/internal/proctest"
	"github.com/relayd/relayd/pkg/admin"
	"github.com/relayd/relayd/pkg/events"
	"github.com/relayd/relayd/pkg/treeauth"
	"github.com/relayd/relayd/pkg/wire"
)

// freshClient opens a new connection per request: a health check must be
// accepted, not ride on a connection opened before the flood.
var freshClient = &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 5 * time.Second}

// stream is one GET /-/events held open by the test.
type stream struct {
	conn net.Conn
	r    *events.Reader
}

// openStream dials addr from the loopback address local, asks for the
// event stream with query q and reads the status line. It returns the
// status (0 when no answer came within wait) and, for 200, the stream.
func openStream(local, addr, q string, wait time.Duration) (int, *stream, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: wait}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return 0, nil, err
	}
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := fmt.Fprintf(c, "GET /-/events?%s HTTP/1.1\r\nHost: relay\r\nAccept: text/event-stream\r\n\r\n", q); err != nil {
		c.Close()
		return 0, nil, err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, &stream{conn: c}, err // no answer: the connection is held anyway
	}
	if resp.StatusCode != http.StatusOK {
		c.Close()
		return resp.StatusCode, nil, nil
	}
	_ = c.SetDeadline(time.Time{})
	return 200, &stream{conn: c, r: events.NewReader(br)}, nil
}

// waitGeneration reads s until a catalog event of generation g or later.
func (s *stream) waitGeneration(g uint64, d time.Duration) error {
	_ = s.conn.SetReadDeadline(time.Now().Add(d))
	for {
		ev, err := s.r.Next()
		if err != nil {
			return fmt.Errorf("stream ended before generation %d: %w", g, err)
		}
		if ev.Kind == wire.KindReplaced {
			return fmt.Errorf("stream replaced: %s", ev.Data)
		}
		if gen, err := wire.ParseGeneration(ev.Data); err == nil && gen.Generation >= g {
			return nil
		}
	}
}

// republish adds a file to tr and publishes it again: the next generation.
func republish(t *testing.T, tr *tree, name string) uint64 {
	t.Helper()
	if err := os.WriteFile(filepath.Join(tr.Dir, filepath.FromSlash(name)), []byte(name), 0o644); err != nil {
		t.Fatal(err)
	}
	return tr.publish(t)
}

// status reads an admin /v1/status.
func status(addr string) (admin.Status, error) {
	var s admin.Status
	resp, err := freshClient.Get("http://" + addr + "/v1/status")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("status %d", resp.StatusCode)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

func healthy(url string) error {
	for _, p := range []string{"/-/healthz", "/-/readyz"} {
		resp, err := freshClient.Get(url + p)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: status %d", p, resp.StatusCode)
		}
	}
	return nil
}

// Row 4: more idle event streams than the relay has descriptors, from
// three addresses. The relay refuses streams beyond its caps (503
// too_many_streams) and closes connections beyond its connection cap;
// /-/healthz, /-/readyz and the admin /v1/status keep answering, an agent
// connected before the flood and one that connects during it from
// another address both get the next generation pushed.
func TestStreamFloodUnderLowFdLimit(t *testing.T) {
	t.Parallel()
	// At fd 1,500 half is reserved: 750 content descriptors, 675 streams.
	// The defaults otherwise: three addresses take the first 90 %, the
	// last tenth is kept for addresses holding fewer.
	const nofile, perAttacker = 1500, 700
	tr := publishTree(t, map[string][]byte{"security/kb-1.patch": randomBytes(1, 1000)})
	argv := proctest.WithNofile(t, nofile, proctest.RelaydArgv(relaydBin, "--mode", "origin", "--root", tr.Dir,
		"--admin", "127.0.0.1:0"))
	relay := proctest.Start(t, "origin", argv, nil, "")
	relay.WaitReady(t)
	admin := relay.WaitLogAddr(t, "admin listening")

	code, early, err := openStream("127.0.0.1", relay.Addr, "agent=early", 5*time.Second)
	if code != 200 {
		t.Fatalf("the early agent's stream: %d, %v", code, err)
	}
	defer early.conn.Close()
	if err := early.waitGeneration(1, 5*time.Second); err != nil {
		t.Fatal(err)
	}

	// The flood: 3 × 700 streams, 2,100 > the 1,500 descriptors; those
	// answered 200 (or not at all) are held open, a refusal is closed.
	var (
		mu      sync.Mutex
		held    []net.Conn
		ok, got atomic.Int64
		refused atomic.Int64
	)
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	jobs := make(chan string)
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for local := range jobs {
				code, s, _ := openStream(local, relay.Addr, "", 2*time.Second)
				got.Add(1)
				switch {
				case code == 200:
					ok.Add(1)
				case code == http.StatusServiceUnavailable:
					refused.Add(1)
				}
				if s != nil {
					mu.Lock()
					held = append(held, s.conn)
					mu.Unlock()
				}
			}
		})
	}
	deadline := time.Now().Add(60 * time.Second)
	for i := range perAttacker {
		if time.Now().After(deadline) {
			break
		}
		for _, local := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
			jobs <- local
		}
		_ = i
	}
	close(jobs)
	wg.Wait()
	t.Logf("flood: %d streams tried, %d open, %d refused with 503", got.Load(), ok.Load(), refused.Load())
	s, err := status(admin)
	if err != nil {
		t.Fatal(err)
	}
	if most := int64(s.Budget.EventsMax - s.Budget.EventsMax/10); ok.Load() > most {
		t.Errorf("%d flood streams open, want at most %d (90 %% of events-max %d)", ok.Load(), most, s.Budget.EventsMax)
	}

	proctest.Consistently(t, 2*time.Second, "health checks and the admin status under the flood", func() error {
		if err := healthy(relay.URL); err != nil {
			return err
		}
		s, err := status(admin)
		if err != nil {
			return fmt.Errorf("admin /v1/status: %w", err)
		}
		if b := s.Budget; b == nil || b.StreamsRefused == 0 || b.Conns > int64(b.MaxConns) {
			return fmt.Errorf("budget %+v: want streams refused and connections within the cap", b)
		}
		return nil
	})
	code, late, err := openStream("127.0.0.1", relay.Addr, "agent=late", 5*time.Second)
	if code != 200 {
		t.Fatalf("an agent from 127.0.0.1 during the flood: %d, %v", code, err)
	}
	defer late.conn.Close()
	gen := republish(t, tr, "security/kb-2.patch")
	for name, s := range map[string]*stream{"early": early, "late": late} {
		if err := s.waitGeneration(gen, 20*time.Second); err != nil {
			t.Errorf("the %s agent: %v", name, err)
		}
	}
	if err := healthy(relay.URL); err != nil {
		t.Errorf("after the publish: %v", err)
	}
}

// Row 4, connections: more idle connections (no request) than the relay
// has descriptors. The content port takes up to its cap and closes the
// rest at once; the admin port, outside the content port's budget, keeps
// answering, and the content port serves again once the flood leaves.
func TestConnFloodKeepsAdmin(t *testing.T) {
	t.Parallel()
	const nofile, flood = 1500, 2000
	relay, admin := startLowFdOrigin(t, nofile, map[string][]byte{"security/kb-1.patch": randomBytes(1, 1000)})
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.5")}, Timeout: 2 * time.Second}
	for range flood {
		c, err := d.Dial("tcp", relay.Addr)
		if err != nil {
			break // the listen queue is full: the relay is not accepting
		}
		conns = append(conns, c)
	}
	t.Logf("%d idle connections opened", len(conns))
	proctest.Consistently(t, 2*time.Second, "the admin port under a connection flood", func() error {
		s, err := status(admin)
		if err != nil {
			return fmt.Errorf("admin /v1/status: %w", err)
		}
		if b := s.Budget; b == nil || b.Conns > int64(b.MaxConns) {
			return fmt.Errorf("budget %+v: want connections within the cap", b)
		}
		return nil
	})
	s, err := status(admin)
	if err != nil {
		t.Fatal(err)
	}
	if s.Budget.ConnsRefused == 0 {
		t.Errorf("budget %+v: want connections beyond the cap refused", s.Budget)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	proctest.Eventually(t, 20*time.Second, "the content port after the flood", func() error { return healthy(relay.URL) })
}

// Row 8, agents: a stranger that reuses a real agent's id from another
// address does not push the real agent off its stream.
func TestStreamIdentityTheft(t *testing.T) {
	t.Parallel()
	tr := publishTree(t, map[string][]byte{"security/kb-1.patch": randomBytes(1, 1000)})
	relay := startRelayd(t, "--mode", "origin", "--root", tr.Dir)
	code, real, err := openStream("127.0.0.1", relay.Addr, "agent=agent-7", 5*time.Second)
	if code != 200 {
		t.Fatalf("the real agent: %d, %v", code, err)
	}
	defer real.conn.Close()
	if err := real.waitGeneration(1, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, local := range []string{"127.0.0.2", "127.0.0.3"} {
		code, thief, err := openStream(local, relay.Addr, "agent=agent-7", 5*time.Second)
		if code != 200 {
			t.Fatalf("the stranger from %s: %d, %v", local, code, err)
		}
		defer thief.conn.Close()
	}
	gen := republish(t, tr, "security/kb-2.patch")
	if err := real.waitGeneration(gen, 20*time.Second); err != nil {
		t.Fatalf("the real agent after strangers took its id: %v", err)
	}
}

// Row 8, relays: two relays with one group and node name (cloned hosts)
// take turns on their parent's stream at most once per few seconds each,
// say so once, and the conflict shows in /v1/status and relayd status —
// on the parent (stream) and, when they gossip, on the clones (gossip).
func TestStreamTwoRelaysOneName(t *testing.T) {
	t.Parallel()
	tr := publishTree(t, map[string][]byte{"security/kb-1.patch": randomBytes(1, 1000)})
	// Cloned hosts carry the same tree key: both prove the relay identity.
	keys := filepath.Join(t.TempDir(), "keys")
	if out, stderr, err := proctest.Run(t, 30*time.Second, relaydBin, "keygen", "--tree", "--out", keys); err != nil {
		t.Fatalf("relayd keygen --tree: %v\n%s%s", err, out, stderr)
	}
	treeKey := filepath.Join(keys, treeauth.KeyFile)
	parent := startRelayd(t, "--mode", "origin", "--root", tr.Dir, "--admin", "127.0.0.1:0", "--tree-key-file", treeKey)
	parentAdmin := parent.WaitLogAddr(t, "admin listening")
	gossipA := proctest.FreeTCPUDPAddr(t)
	clone := func(gossip string, join ...string) (*proctest.Proc, string) {
		args := []string{"--mode", "proxy", "--node", "clone", "--group", "branch", "--upstream", parent.URL,
			"--data-dir", t.TempDir(), "--admin", "127.0.0.1:0", "--gossip", gossip, "--tree-key-file", treeKey}
		if len(join) > 0 {
			args = append(args, "--join", strings.Join(join, ","))
		}
		p := startRelayd(t, args...)
		return p, p.WaitLogAddr(t, "admin listening")
	}
	a, adminA := clone(gossipA)
	b, adminB := clone(proctest.FreeTCPUDPAddr(t), gossipA)

	streams := func() int {
		n := 0
		for _, m := range proctest.LogLines(parent.Log()) {
			if m["message"] == "request" && m["method"] == "GET" && m["path"] == "/-/events" {
				n++
			}
		}
		return n
	}
	proctest.Eventually(t, 30*time.Second, "a replacement on the parent", func() error {
		s, err := status(parentAdmin)
		if err != nil {
			return err
		}
		if s.Budget == nil || s.Budget.StreamsReplaced == 0 {
			return fmt.Errorf("no replacement yet (%d streams opened)", streams())
		}
		return nil
	})
	// 12 s: each clone waits 2.5-5 s after its first replacement, 5-10 s
	// after the second: at most 12/2.5+1 streams each, not ~75 a second.
	const window, most = 12 * time.Second, 12
	start := streams()
	proctest.Consistently(t, window, "at most one reconnect per 2.5 s per clone", func() error {
		if n := streams() - start; n > most {
			return fmt.Errorf("%d event streams opened in under %s, want at most %d", n, window, most)
		}
		return nil
	})
	t.Logf("%d event streams opened in %s by the two clones", streams()-start, window)

	for _, p := range []*proctest.Proc{a, b} {
		if n := strings.Count(p.Log(), "replaced by another with this relay's group and node name"); n > 1 {
			t.Errorf("%s logged the replacement %d times, want once", p.Name, n)
		}
	}
	if n := strings.Count(parent.Log(), "two event streams claim one child relay's group and node name"); n != 1 {
		t.Errorf("the parent logged the conflict %d times, want once", n)
	}
	s, err := status(parentAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Conflicts) != 1 || s.Conflicts[0].Kind != "stream" || s.Conflicts[0].Name != "branch/clone" {
		t.Errorf("the parent's conflicts: %+v, want one stream conflict for branch/clone", s.Conflicts)
	}
	// The clones gossip with one name: gossip refuses the second, each
	// says so once, relayd status shows it.
	proctest.Eventually(t, 20*time.Second, "a gossip conflict on a clone", func() error {
		for _, admin := range []string{adminA, adminB} {
			s, err := status(admin)
			if err != nil {
				return err
			}
			for _, c := range s.Conflicts {
				if c.Kind == "gossip" && c.Name == "clone" {
					out, _, err := proctest.Run(t, 10*time.Second, relaydBin, "status", "--admin", admin)
					if err != nil || !strings.Contains(out, "CONFLICT") || !strings.Contains(out, "gossip clone") {
						return proctest.StopErr{Err: fmt.Errorf("relayd status: %v\n%s", err, out)}
					}
					return nil
				}
			}
		}
		return errors.New("no gossip conflict yet")
	})
	for _, p := range []*proctest.Proc{a, b} {
		if n := strings.Count(p.Log(), "two relays of this group use one node name"); n > 1 {
			t.Errorf("%s logged the gossip conflict %d times, want at most once", p.Name, n)
		}
		if n := strings.Count(p.Log(), "Conflicting address"); n > 0 && strings.Contains(p.Log(), `"level":"error","from":"memberlist","message":"Conflicting`) {
			t.Errorf("%s passed memberlist's conflict line on as an error %d times", p.Name, n)
		}
	}
}

// startLowFdOrigin starts an origin serving files under a descriptor
// limit of nofile, with an admin port; it returns the process and the
// admin address.
func startLowFdOrigin(t *testing.T, nofile uint64, files map[string][]byte) (*proctest.Proc, string) {
	t.Helper()
	tr := publishTree(t, files)
	argv := proctest.WithNofile(t, nofile, proctest.RelaydArgv(relaydBin, "--mode", "origin", "--root", tr.Dir, "--admin", "127.0.0.1:0"))
	relay := proctest.Start(t, "origin", argv, nil, "")
	relay.WaitReady(t)
	return relay, relay.WaitLogAddr(t, "admin listening")
}
