// A relay group of three nodes in one process, on loopback.
package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/internal/testlog"
	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/group"
	"github.com/relayd/relayd/pkg/node"
)

// groupNode is one node.Node running in the test.
type groupNode struct {
	name    string
	n       *node.Node
	url     string // content base URL
	admin   string // admin host:port
	stop    func() // cancels Run and waits for it
	stopped chan error
}

// startGroupNode starts a proxy node of group hq with content, admin and
// gossip on 127.0.0.1 ports of its own.
func startGroupNode(t *testing.T, name, upstream string, lw *testlog.Writer, join ...string) *groupNode {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.Node, cfg.Group, cfg.Mode = name, "hq", node.ModeProxy
	cfg.DataDir = t.TempDir()
	cfg.Listen, cfg.Admin, cfg.Gossip, cfg.Join = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", join
	cfg.Upstream.Upstreams = []string{upstream}
	cfg.DrainTimeout = 5 * time.Second
	n, err := node.New(cfg, zerolog.New(lw).Level(zerolog.InfoLevel), clock.Real{})
	if err != nil {
		t.Fatalf("node %s: %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gn := &groupNode{name: name, n: n, url: "http://" + n.ContentAddr(), admin: n.AdminAddr(), stopped: make(chan error, 1)}
	go func() { gn.stopped <- n.Run(ctx) }()
	var once sync.Once
	gn.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-gn.stopped:
				if err != nil {
					t.Errorf("node %s Run: %v", name, err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("node %s still running 15 s after its context ended", name)
			}
		})
	}
	t.Cleanup(gn.stop)
	return gn
}

// waitFor polls f every 20 ms until it returns nil, failing after d.
func waitFor(t *testing.T, d time.Duration, what string, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := f()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("%s: still failing after %v: %v", what, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// getJSON GETs url and decodes its JSON body into v, returning the body.
func getJSON(c *http.Client, url string, v any) ([]byte, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return b, fmt.Errorf("GET %s: status %d: %s", url, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" && !bytes.HasPrefix([]byte(ct), []byte("application/json;")) {
		return b, fmt.Errorf("GET %s: Content-Type %q", url, ct)
	}
	return b, json.Unmarshal(b, v)
}

// members is the /v1/members document.
type members struct {
	Group   string         `json:"group"`
	Self    string         `json:"self"`
	Members []group.Member `json:"members"`
}

// countingOrigin serves /obj/<n> with deterministic bytes and counts GETs
// per path.
type countingOrigin struct {
	mu   sync.Mutex
	gets map[string]int
}

func objectBytes(path string) []byte {
	return bytes.Repeat([]byte(path+"|"), 64<<10/(len(path)+1))
}

func (o *countingOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	if r.Method == http.MethodGet {
		o.gets[r.URL.Path]++
	}
	o.mu.Unlock()
	b := objectBytes(r.URL.Path)
	w.Header().Set("Cache-Control", "max-age=3600")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// TestGroupOfThreeInProcess: three nodes form a group; /-/relays lists
// exactly them, /v1/members shows them alive with self marked, and misses
// for 30 keys arriving at all three nodes at once reach the origin once
// per key.
func TestGroupOfThreeInProcess(t *testing.T) {
	origin := &countingOrigin{gets: map[string]int{}}
	osrv := httptest.NewServer(origin)
	defer osrv.Close()
	lw := testlog.New(t) // closes last, after every node's stop

	a := startGroupNode(t, "n-a", osrv.URL, lw)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}
	// a's gossip address, as its admin API tells it.
	var seed string
	waitFor(t, 10*time.Second, "n-a's /v1/members", func() error {
		var m members
		if _, err := getJSON(c, "http://"+a.admin+"/v1/members", &m); err != nil {
			return err
		}
		for _, x := range m.Members {
			if x.Self {
				seed = x.Addr
				return nil
			}
		}
		return fmt.Errorf("no self member in %+v", m)
	})
	if host, _, err := net.SplitHostPort(seed); err != nil || host != "127.0.0.1" {
		t.Fatalf("n-a gossip address %q, want 127.0.0.1:port", seed)
	}
	b := startGroupNode(t, "n-b", osrv.URL, lw, seed)
	cc := startGroupNode(t, "n-c", osrv.URL, lw, seed)
	nodes := []*groupNode{a, b, cc}
	names := []string{"n-a", "n-b", "n-c"}
	// Stop the nodes before the origin goes, one after the other: each
	// leaves the group, which takes a moment while others are there to
	// hear it, but up to 2 s when they are all leaving at once.
	defer func() {
		c.CloseIdleConnections()
		for _, n := range nodes {
			n.stop()
		}
	}()

	// /-/relays: the document's exact shape, and every node lists the
	// three.
	urls := map[string]string{}
	for _, n := range nodes {
		urls[n.name] = n.url
	}
	d := waitFor(t, 10*time.Second, "every node to list the three in /-/relays", func() error {
		for _, n := range nodes {
			var doc map[string]any
			body, err := getJSON(c, n.url+"/-/relays", &doc)
			if err != nil {
				return err
			}
			if len(doc) != 2 || doc["group"] != "hq" {
				return fmt.Errorf("%s: /-/relays %s, want exactly {group: hq, relays}", n.name, body)
			}
			list, ok := doc["relays"].([]any)
			if !ok {
				return fmt.Errorf("%s: /-/relays %s: relays is not a list", n.name, body)
			}
			var got []string
			for _, e := range list {
				r, ok := e.(map[string]any)
				if !ok || len(r) != 4 {
					return fmt.Errorf("%s: entry %v, want {name, url, mode, generation}", n.name, e)
				}
				name, _ := r["name"].(string)
				if r["url"] != urls[name] || r["mode"] != "proxy" || r["generation"] != float64(0) {
					return fmt.Errorf("%s: entry %v, want url %q, mode proxy, generation 0", n.name, r, urls[name])
				}
				got = append(got, name)
			}
			slices.Sort(got)
			if !slices.Equal(got, names) {
				return fmt.Errorf("%s lists %v", n.name, got)
			}
		}
		return nil
	})
	t.Logf("group of 3 formed: all list each other %v after the last started", d)

	// /v1/members: three alive members, self marked once, on every node.
	for _, n := range nodes {
		var m members
		if _, err := getJSON(c, "http://"+n.admin+"/v1/members", &m); err != nil {
			t.Fatal(err)
		}
		if m.Group != "hq" || m.Self != n.name || len(m.Members) != 3 {
			t.Fatalf("%s /v1/members: group %q self %q, %d members; want hq, %s, 3", n.name, m.Group, m.Self, len(m.Members), n.name)
		}
		for i, x := range m.Members {
			if x.Name != names[i] || x.State != "alive" || x.Self != (x.Name == n.name) || x.Meta.URL != urls[x.Name] ||
				x.Meta.Group != "hq" || x.Meta.Mode != "proxy" || !x.Meta.Ready || x.LastChange.IsZero() {
				t.Errorf("%s /v1/members entry %d: %+v", n.name, i, x)
			}
			if host, _, err := net.SplitHostPort(x.Addr); err != nil || host != "127.0.0.1" {
				t.Errorf("%s /v1/members: %s gossip_addr %q", n.name, x.Name, x.Addr)
			}
		}
	}

	// 30 cold keys, each asked of the three nodes at once.
	const keys = 30
	ms := []group.Member{{Name: "n-a"}, {Name: "n-b"}, {Name: "n-c"}}
	type result struct {
		cache string
		err   error
	}
	res := make([][3]result, keys)
	var wg sync.WaitGroup
	for k := range keys {
		path := fmt.Sprintf("/obj/pkg-%02d.deb", k)
		for i, n := range nodes {
			wg.Go(func() {
				r := &res[k][i]
				resp, err := c.Get(n.url + path)
				if err != nil {
					r.err = err
					return
				}
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				r.cache = resp.Header.Get("X-Relay-Cache")
				switch {
				case err != nil:
					r.err = err
				case resp.StatusCode != http.StatusOK:
					r.err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
				case !bytes.Equal(body, objectBytes(path)):
					r.err = fmt.Errorf("wrong body (%d bytes)", len(body))
				}
			})
		}
	}
	wg.Wait()
	owned := map[string]int{}
	for k := range keys {
		path := fmt.Sprintf("/obj/pkg-%02d.deb", k)
		owner, _ := group.Owner(ms, path[1:])
		owned[owner.Name]++
		for i, n := range nodes {
			r := res[k][i]
			if r.err != nil {
				t.Errorf("GET %s via %s: %v", path, n.name, r.err)
				continue
			}
			want := []string{"PEER"}
			if n.name == owner.Name {
				want = []string{"MISS", "HIT"} // HIT: a peer's request filled it first
			}
			if !slices.Contains(want, r.cache) {
				t.Errorf("GET %s via %s (owner %s): X-Relay-Cache %q, want one of %v", path, n.name, owner.Name, r.cache, want)
			}
		}
	}
	t.Logf("owners of the 30 keys: %v", owned)
	origin.mu.Lock()
	defer origin.mu.Unlock()
	for k := range keys {
		path := fmt.Sprintf("/obj/pkg-%02d.deb", k)
		if n := origin.gets[path]; n != 1 {
			t.Errorf("origin got %d GETs for %s, want 1", n, path)
		}
	}
	objects := 0
	for path := range origin.gets {
		if !strings.HasPrefix(path, "/-/") { // the relay API: /-/relays, /-/events
			objects++
		}
	}
	if objects != keys {
		t.Errorf("origin got GETs for %d object paths, want %d: %v", objects, keys, origin.gets)
	}
}
