package hostile

// Attack findings 1 and 2 after the first round of issue 11 fixes: one
// address filling the content port with slow downloads and dripped
// bodies, and three addresses, one after the other, taking every event
// stream place including the reserve.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relayd/relayd/internal/proctest"
	"github.com/relayd/relayd/pkg/treeauth"
)

// floodStreams opens idle event streams from local until the relay
// refuses one (or max are open), and returns the streams opened.
func floodStreams(addr, local string, max int) (open []net.Conn, refused bool) {
	var (
		mu   sync.Mutex
		stop atomic.Bool
		wg   sync.WaitGroup
	)
	jobs := make(chan struct{})
	for range 16 {
		wg.Go(func() {
			for range jobs {
				code, s, _ := openStream(local, addr, "", 2*time.Second)
				if s != nil {
					mu.Lock()
					open = append(open, s.conn)
					mu.Unlock()
				}
				if code != http.StatusOK {
					stop.Store(true)
				}
			}
		})
	}
	for i := 0; i < max && !stop.Load(); i++ {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	return open, stop.Load()
}

// Finding 2: three addresses flood the event streams one after the other,
// each until it is refused. The first may take up to the reserve, the
// next two only a few places of it each; an agent from a fourth address
// still gets its stream, and a signed child relay (whose address floods
// too) holds its stream to the parent and gets the next generation.
// (Before, an address holding under a quarter of events-max could take
// the whole reserve: the late agent got 503 and the child relay none.)
func TestStreamReserveSequentialFlood(t *testing.T) {
	t.Parallel()
	// At fd 1,500: 750 content connections, 675 streams.
	const nofile = 1500
	tr := publishTree(t, map[string][]byte{"security/kb-1.patch": randomBytes(1, 1000)})
	keys := filepath.Join(t.TempDir(), "keys")
	if out, stderr, err := proctest.Run(t, 30*time.Second, relaydBin, "keygen", "--tree", "--out", keys); err != nil {
		t.Fatalf("relayd keygen --tree: %v\n%s%s", err, out, stderr)
	}
	treeKey := filepath.Join(keys, treeauth.KeyFile)
	argv := proctest.WithNofile(t, nofile, proctest.RelaydArgv(relaydBin, "--mode", "origin", "--root", tr.Dir,
		"--admin", "127.0.0.1:0", "--tree-key-file", treeKey))
	parent := proctest.Start(t, "origin", argv, nil, "")
	parent.WaitReady(t)
	admin := parent.WaitLogAddr(t, "admin listening")

	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	got := map[string]int{}
	for _, local := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		open, refused := floodStreams(parent.Addr, local, 1000)
		held = append(held, open...)
		got[local] = len(open)
		if !refused {
			t.Fatalf("%s opened %d streams and was never refused", local, len(open))
		}
	}
	s, err := status(admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("streams taken one address after the other: %v of events-max %d", got, s.Budget.EventsMax)
	if most := s.Budget.EventsMax / 16; got["127.0.0.3"] > most || got["127.0.0.4"] > most {
		t.Errorf("the second and third address took %d and %d streams, want at most %d each", got["127.0.0.3"], got["127.0.0.4"], most)
	}
	code, late, err := openStream("127.0.0.1", parent.Addr, "agent=late", 5*time.Second)
	if code != http.StatusOK {
		t.Fatalf("an agent from 127.0.0.1 after the flood: %d, %v; want its stream", code, err)
	}
	defer late.conn.Close()

	// More addresses take what is left to agents, a few places each,
	// until one gets none; then a child relay of the tree, from an
	// address that flooded too, must still get its stream.
	for i := 10; i < 250; i++ {
		open, _ := floodStreams(parent.Addr, fmt.Sprint("127.0.1.", i), 1000)
		held = append(held, open...)
		if len(open) == 0 {
			break
		}
	}
	if code, s, _ := openStream("127.0.0.6", parent.Addr, "agent=last", 5*time.Second); code != http.StatusServiceUnavailable {
		if s != nil {
			s.conn.Close()
		}
		t.Fatalf("an agent after every address flooded: %d, want 503 (the test must fill what agents may take)", code)
	}
	child := startRelayd(t, "--mode", "proxy", "--node", "web-1", "--group", "branch", "--upstream", parent.URL,
		"--data-dir", t.TempDir(), "--admin", "127.0.0.1:0", "--tree-key-file", treeKey)
	proctest.Eventually(t, 30*time.Second, "the child relay's stream on the flooded parent", func() error {
		s, err := status(admin)
		if err != nil {
			return err
		}
		if s.Children != 1 {
			return fmt.Errorf("children %d, agents %d; want the child relay's stream", s.Children, s.Agents)
		}
		return nil
	})
	gen := republish(t, tr, "security/kb-2.patch")
	if err := late.waitGeneration(gen, 20*time.Second); err != nil {
		t.Errorf("the late agent: %v", err)
	}
	_ = child
}

// Finding 1: one address opens slow downloads it never reads, and
// requests whose bodies it drips a byte at a time; /-/healthz and
// /-/readyz from another address keep answering on the content port, and
// a dripped body to /-/healthz gets its answer. (Before, the address took
// every descriptor of the content port — each download counts two — and
// a dripped body kept /-/healthz from answering at all.)
func TestOneAddressSlowDownloadsKeepHealth(t *testing.T) {
	t.Parallel()
	// At fd 1,500: 750 content descriptors; 400 downloads would take 800.
	const nofile, downloads, drips = 1500, 400, 20
	relay, admin := startLowFdOrigin(t, nofile, map[string][]byte{"pool/big.deb": randomBytes(2, 1<<20)})

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.5")}, Timeout: 2 * time.Second}
	send := func(req string) {
		c, err := d.Dial("tcp", relay.Addr)
		if err != nil {
			return // the listen queue is full
		}
		conns = append(conns, c)
		_, _ = io.WriteString(c, req)
	}
	for range downloads {
		send("GET /pool/big.deb HTTP/1.1\r\nHost: relay\r\n\r\n") // never read
	}
	for range drips {
		send("GET /-/healthz HTTP/1.1\r\nHost: relay\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n") // never ended
	}
	t.Logf("%d connections opened from 127.0.0.5", len(conns))
	proctest.Consistently(t, 2*time.Second, "health checks from 127.0.0.1 while 127.0.0.5 holds downloads", func() error {
		return healthy(relay.URL)
	})
	s, err := status(admin)
	if err != nil {
		t.Fatal(err)
	}
	if s.Budget.ConnsRefused == 0 {
		t.Errorf("budget %+v: want 127.0.0.5's connections beyond conns-per-addr refused", s.Budget)
	}
	// A dripped body to /-/healthz gets its answer and the connection
	// closes (it is not kept to drain the body).
	c, err := net.Dial("tcp", relay.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	_, _ = io.WriteString(c, "GET /-/healthz HTTP/1.1\r\nHost: relay\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n")
	b := make([]byte, 4096)
	var out []byte
	for {
		n, err := c.Read(b)
		out = append(out, b[:n]...)
		if err != nil {
			if err != io.EOF {
				t.Fatalf("/-/healthz with a dripped body: %v after %q; want an answer and the connection closed", err, out)
			}
			break
		}
	}
	if len(out) < 12 || string(out[:12]) != "HTTP/1.1 200" {
		t.Fatalf("/-/healthz with a dripped body: %q, want 200", out)
	}
}
