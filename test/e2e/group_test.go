// Relay groups end to end: real relayd processes gossiping on 127.0.0.1,
// an in-test origin, kills, SIGTERM and intruders.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/group"
)

// ---------------------------------------------------------------------------
// group helpers

// grpRelay is one relayd process in a group.
type grpRelay struct {
	*proc
	node   string // --node
	gossip string // --gossip host:port
	admin  string // admin host:port, "" when disabled
}

// grpOpts are the group flags of one relay.
type grpOpts struct {
	group    string
	join     []string
	keyFile  string
	admin    bool
	upstream string
}

// startGroupRelay starts a proxy relay named node with gossip on a free
// loopback port.
func startGroupRelay(t testing.TB, node string, o grpOpts) *grpRelay {
	t.Helper()
	r := &grpRelay{node: node, gossip: grpFreeGossip(t)}
	args := []string{"--mode", "proxy", "--node", node, "--group", o.group, "--gossip", r.gossip,
		"--upstream", o.upstream, "--data-dir", t.TempDir(), "--cache-max", "1GiB", "--upstream-stall-timeout", "60s"}
	if len(o.join) > 0 {
		args = append(args, "--join", strings.Join(o.join, ","))
	}
	if o.keyFile != "" {
		args = append(args, "--gossip-key-file", o.keyFile)
	}
	if o.admin {
		args = append(args, "--admin", "127.0.0.1:0")
	}
	r.proc = startRelayd(t, args...)
	r.Name = r.proc.Name + "(" + node + ")"
	if o.admin {
		r.admin = r.proc.WaitLogAddr(t, "admin listening")
	}
	return r
}

// startGroup starts one relay per name in group grp, each joining the
// first, and waits until every relay lists all of them.
func startGroup(t testing.TB, grp, upstream string, names ...string) []*grpRelay {
	t.Helper()
	var rs []*grpRelay
	for i, n := range names {
		o := grpOpts{group: grp, upstream: upstream}
		if i > 0 {
			o.join = []string{rs[0].gossip}
		}
		rs = append(rs, startGroupRelay(t, n, o))
	}
	start := time.Now()
	waitListed(t, rs, names, 15*time.Second)
	t.Logf("%d relays of group %q list each other %v after the last one started", len(rs), grp, time.Since(start).Round(time.Millisecond))
	return rs
}

// grpRelays is the /-/relays document as an agent reads it.
type grpRelays struct {
	Group  string `json:"group"`
	Relays []struct {
		Name       string `json:"name"`
		URL        string `json:"url"`
		Mode       string `json:"mode"`
		Generation uint64 `json:"generation"`
	} `json:"relays"`
}

func (d grpRelays) names() []string {
	var n []string
	for _, r := range d.Relays {
		n = append(n, r.Name)
	}
	return n
}

func fetchRelays(c *http.Client, base string) (grpRelays, error) {
	var d grpRelays
	r, err := tryGet(c, http.MethodGet, base+"/-/relays")
	if err != nil {
		return d, err
	}
	if r.status != http.StatusOK {
		return d, fmt.Errorf("/-/relays: status %d: %s", r.status, truncate(r.body))
	}
	if err := json.Unmarshal(r.body, &d); err != nil {
		return d, fmt.Errorf("/-/relays: %w: %s", err, truncate(r.body))
	}
	return d, nil
}

// listedSorted is the sorted names relay lists in /-/relays.
func listedSorted(c *http.Client, base string) ([]string, error) {
	d, err := fetchRelays(c, base)
	if err != nil {
		return nil, err
	}
	n := d.names()
	slices.Sort(n)
	return n, nil
}

// waitListed waits until every relay of rs lists exactly want.
func waitListed(t testing.TB, rs []*grpRelay, want []string, timeout time.Duration) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	c := newClient()
	eventually(t, timeout, fmt.Sprintf("every relay to list %v", want), func() error {
		for _, r := range rs {
			if r.Exited() {
				return stopErr{Err: fmt.Errorf("%s exited: %v", r.Name, r.WaitErr())}
			}
			got, err := listedSorted(c, r.URL)
			if err != nil {
				return err
			}
			if !slices.Equal(got, want) {
				return fmt.Errorf("%s lists %v", r.node, got)
			}
		}
		return nil
	})
}

// ownerOf is the relay of rs that owns key (path without its leading
// slash), by the rendezvous hash relayd itself uses.
func ownerOf(rs []*grpRelay, key string) *grpRelay {
	var ms []group.Member
	for _, r := range rs {
		ms = append(ms, group.Member{Name: r.node})
	}
	o, _ := group.Owner(ms, strings.TrimPrefix(key, "/"))
	for _, r := range rs {
		if r.node == o.Name {
			return r
		}
	}
	return nil
}

// grpMembers is the /v1/members document.
type grpMembers struct {
	Group   string `json:"group"`
	Self    string `json:"self"`
	Members []struct {
		Name  string `json:"name"`
		Addr  string `json:"gossip_addr"`
		State string `json:"state"`
		Self  bool   `json:"self"`
		Meta  struct {
			Group string `json:"g"`
			URL   string `json:"u"`
		} `json:"meta"`
	} `json:"members"`
}

func fetchMembers(c *http.Client, admin string) (grpMembers, error) {
	var d grpMembers
	r, err := tryGet(c, http.MethodGet, "http://"+admin+"/v1/members")
	if err != nil {
		return d, err
	}
	if r.status != http.StatusOK {
		return d, fmt.Errorf("/v1/members: status %d: %s", r.status, truncate(r.body))
	}
	if err := json.Unmarshal(r.body, &d); err != nil {
		return d, fmt.Errorf("/v1/members: %w: %s", err, truncate(r.body))
	}
	return d, nil
}

// writeGossipKey writes base64 of 32 random bytes to a new file.
func writeGossipKey(t testing.TB) string {
	t.Helper()
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	p := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(p, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// readSame reads body to its end, comparing it with want as it goes, and
// returns how many bytes matched: a body that is exactly want is what a
// sha256 check accepts, and a wrong one says where it goes wrong.
func readSame(body io.Reader, want []byte) (int64, error) {
	buf := make([]byte, 256<<10)
	var off int64
	for {
		n, err := body.Read(buf)
		if n > 0 {
			end := off + int64(n)
			if end > int64(len(want)) || !bytes.Equal(buf[:n], want[off:end]) {
				i := 0
				for int64(i) < int64(n) && off+int64(i) < int64(len(want)) && buf[i] == want[off+int64(i)] {
					i++
				}
				return off + int64(i), fmt.Errorf("body differs at byte %d", off+int64(i))
			}
			off = end
		}
		if err == io.EOF {
			if off != int64(len(want)) {
				return off, fmt.Errorf("body ends at %d of %d bytes", off, len(want))
			}
			return off, nil
		}
		if err != nil {
			return off, fmt.Errorf("body after %d bytes: %w", off, err)
		}
	}
}

// ---------------------------------------------------------------------------
// tests

// TestGroup150ClientsOneOriginGet: 150 clients spread over the three relays
// of a group ask for one cold 64 MiB object at once; the object crosses the
// "WAN" once: the origin sees one GET, the owner fills it, the other two
// relays get it from the owner.
func TestGroup150ClientsOneOriginGet(t *testing.T) {
	const (
		clients = 150
		path    = "/pool/main/big-64m.deb"
	)
	data := makeData(150, 64<<20)
	origin := startOrigin(t)
	obj := newObject(data, "max-age=3600")
	obj.chunk, obj.delay = 256<<10, 8*time.Millisecond // 256 chunks: a ~2 s fill
	origin.set(path, obj)
	rs := startGroup(t, "hq", origin.URL, "hq-a", "hq-b", "hq-c")
	owner := ownerOf(rs, path)
	t.Logf("owner of %s: %s", path, owner.node)

	c := newClient()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type result struct {
		relay  int
		status int
		cache  string
		n      int64 // bytes equal to data's before the first difference
		err    error
	}
	results := make([]result, clients)
	var wg sync.WaitGroup
	start := time.Now()
	var fill atomic.Int64
	go func() {
		select {
		case <-obj.sentAll:
			fill.Store(int64(time.Since(start)))
		case <-ctx.Done():
		}
	}()
	for i := range clients {
		wg.Go(func() {
			res := &results[i]
			res.relay = i % len(rs)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rs[res.relay].URL+path, nil)
			resp, err := c.Do(req)
			if err != nil {
				res.err = err
				return
			}
			defer resp.Body.Close()
			res.status, res.cache = resp.StatusCode, resp.Header.Get("X-Relay-Cache")
			res.n, res.err = readSame(resp.Body, data)
		})
	}
	wg.Wait()
	t.Logf("%d clients got 64 MiB each in %v; the origin sent its last byte after %v", clients,
		time.Since(start).Round(time.Millisecond), time.Duration(fill.Load()).Round(time.Millisecond))

	caches := map[string]map[string]int{} // relay → X-Relay-Cache → count
	bad := 0
	for i, r := range results {
		node := rs[r.relay].node
		if caches[node] == nil {
			caches[node] = map[string]int{}
		}
		caches[node][r.cache]++
		if r.err != nil || r.status != http.StatusOK || r.n != int64(len(data)) {
			if bad++; bad <= 5 {
				t.Errorf("client %d via %s: status %d, %d right bytes, %v; want 200 and the %d bytes of sha256 %s",
					i, node, r.status, r.n, r.err, len(data), sha(data))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d clients did not get the object", bad, clients)
	}
	t.Logf("X-Relay-Cache by relay: %v", caches)
	if n := origin.getCount(path); n != 1 {
		t.Errorf("origin got %d GETs for %s, want exactly 1 for the whole group", n, path)
	}
	for _, r := range rs {
		got := caches[r.node]
		if r == owner {
			if got["MISS"] == 0 || got["MISS"]+got["HIT"] != clients/len(rs) {
				t.Errorf("owner %s answered %v, want MISS (HIT for late clients) only", r.node, got)
			}
			continue
		}
		if got["PEER"] == 0 || got["PEER"]+got["HIT"] != clients/len(rs) {
			t.Errorf("non-owner %s answered %v, want PEER (HIT for late clients) only", r.node, got)
		}
	}
}

// TestGroupKillDetectAndJoin: a relay killed with SIGKILL leaves the
// others' /-/relays within 5 s; a new relay joining a survivor (not the
// seed) is listed by all and serves objects, fetched once for the group.
func TestGroupKillDetectAndJoin(t *testing.T) {
	origin := startOrigin(t)
	data := makeData(22, 3<<20)
	origin.set("/pkg/after-join.bin", newObject(data, "max-age=3600"))
	rs := startGroup(t, "hq", origin.URL, "k-a", "k-b", "k-c")
	a, b, c := rs[0], rs[1], rs[2]

	start := time.Now()
	c.Kill(t)
	waitListed(t, []*grpRelay{a, b}, []string{"k-a", "k-b"}, 5*time.Second)
	t.Logf("SIGKILLed relay left the others' /-/relays after %v", time.Since(start).Round(time.Millisecond))

	d := startGroupRelay(t, "k-d", grpOpts{group: "hq", upstream: origin.URL, join: []string{b.gossip}})
	start = time.Now()
	waitListed(t, []*grpRelay{a, b, d}, []string{"k-a", "k-b", "k-d"}, 10*time.Second)
	t.Logf("new relay joining a survivor listed by all after %v", time.Since(start).Round(time.Millisecond))

	cl := newClient()
	for _, r := range []*grpRelay{d, a, b} {
		wantObject(t, get(t, cl, http.MethodGet, r.URL+"/pkg/after-join.bin"), data, "GET via "+r.node)
	}
	if n := origin.getCount("/pkg/after-join.bin"); n != 1 {
		t.Errorf("origin got %d GETs via the three relays, want 1 (the relays disagree on the owner?)", n)
	}
}

// TestGroupRefusesWrongKeyAndGroup: relays with another gossip key, with
// no key, or of another group cannot join a keyed group; both sides log
// it.
func TestGroupRefusesWrongKeyAndGroup(t *testing.T) {
	origin := startOrigin(t)
	key, otherKey := writeGossipKey(t), writeGossipKey(t)
	a := startGroupRelay(t, "sec-a", grpOpts{group: "hq", upstream: origin.URL, keyFile: key, admin: true})
	b := startGroupRelay(t, "sec-b", grpOpts{group: "hq", upstream: origin.URL, keyFile: key, admin: true, join: []string{a.gossip}})
	members := []*grpRelay{a, b}
	waitListed(t, members, []string{"sec-a", "sec-b"}, 10*time.Second)

	intruders := []*grpRelay{
		startGroupRelay(t, "x-wrong-key", grpOpts{group: "hq", upstream: origin.URL, keyFile: otherKey, join: []string{a.gossip}}),
		startGroupRelay(t, "y-no-key", grpOpts{group: "hq", upstream: origin.URL, join: []string{a.gossip}}),
		startGroupRelay(t, "z-other-group", grpOpts{group: "other", upstream: origin.URL, keyFile: key, join: []string{b.gossip}}),
	}
	started := time.Now() // each intruder tried to join as it started
	c := newClient()
	check := func() error {
		for _, m := range members {
			got, err := listedSorted(c, m.URL)
			if err != nil {
				return err
			}
			if !slices.Equal(got, []string{"sec-a", "sec-b"}) {
				return stopErr{Err: fmt.Errorf("%s /-/relays lists %v: an intruder got in", m.node, got)}
			}
			doc, err := fetchMembers(c, m.admin)
			if err != nil {
				return err
			}
			var names []string
			for _, x := range doc.Members {
				names = append(names, x.Name)
			}
			if !slices.Equal(names, []string{"sec-a", "sec-b"}) {
				return stopErr{Err: fmt.Errorf("%s /v1/members lists %v: an intruder got in", m.node, names)}
			}
		}
		for _, x := range intruders {
			got, err := listedSorted(c, x.URL)
			if err != nil {
				return err
			}
			if !slices.Equal(got, []string{x.node}) {
				return stopErr{Err: fmt.Errorf("intruder %s lists %v, want only itself", x.node, got)}
			}
		}
		return nil
	}
	// Keep looking until 3 s after they all started.
	consistently(t, time.Until(started.Add(3*time.Second)), "no intruder listed", check)

	eventually(t, 5*time.Second, "every intruder to log that it could not join", func() error {
		for _, x := range intruders {
			if !strings.Contains(x.Log(), "could not join") {
				return fmt.Errorf("%s has not logged \"could not join\"", x.node)
			}
		}
		return nil
	})
	// The messages docs/operations.md tells operators to look for.
	eventually(t, 5*time.Second, "the group to log the refusals", func() error {
		logs := a.Log() + b.Log()
		for _, w := range []string{"unacceptable label", "no installed keys could decrypt the message"} {
			if !strings.Contains(logs, w) {
				return fmt.Errorf("no group member log says %q", w)
			}
		}
		return nil
	})
	// What the members logged about the keyless relay, for the report.
	for _, m := range members {
		for _, l := range logLines(m.Log()) {
			if l["from"] == "memberlist" && (l["level"] == "warn" || l["level"] == "error") {
				t.Logf("%s: %v", m.node, l["message"])
			}
		}
	}
}

// TestRelaysOrderUniform: /-/relays comes in a fresh uniform random order:
// over 3000 calls each relay is first (second, third) about 1000 times,
// and agents that take the first relay spread evenly.
func TestRelaysOrderUniform(t *testing.T) {
	const (
		calls = 3000
		path  = "/pkg/agent-ping.bin"
	)
	origin := startOrigin(t)
	data := makeData(4, 4<<10)
	origin.set(path, newObject(data, "max-age=3600"))
	rs := startGroup(t, "hq", origin.URL, "u-a", "u-b", "u-c")
	byURL := map[string]*grpRelay{}
	for _, r := range rs {
		byURL[r.URL] = r
	}
	c := newClient()
	// Warm the object on every relay, so the agent requests below are local
	// hits and each relay's access log counts only them.
	for _, r := range rs {
		wantObject(t, get(t, c, http.MethodGet, r.URL+path), data, "warm-up via "+r.node)
	}
	// 3 GETs of the test and 2 of the non-owners to the owner; a relay
	// logs a request once it has answered it, so wait for the lines.
	before := map[string]int{}
	eventually(t, 5*time.Second, "the warm-up GETs in the access logs", func() error {
		sum := 0
		for _, r := range rs {
			before[r.node] = countRequests(r.Log(), http.MethodGet, path)
			sum += before[r.node]
		}
		if sum != 5 {
			return fmt.Errorf("access logs count %v, want 5 GETs", before)
		}
		return nil
	})

	pos := make([]map[string]int, len(rs)) // position → name → count
	for i := range pos {
		pos[i] = map[string]int{}
	}
	orders := map[string]int{} // "u-b,u-a,u-c" → count
	start := time.Now()
	for i := range calls {
		d, err := fetchRelays(c, rs[0].URL)
		if err != nil {
			t.Fatal(err)
		}
		if d.Group != "hq" || len(d.Relays) != len(rs) {
			t.Fatalf("call %d: %+v, want the 3 relays of hq", i, d)
		}
		seen := map[string]bool{}
		for p, x := range d.Relays {
			r := byURL[x.URL]
			if r == nil || r.node != x.Name || x.Mode != "proxy" || seen[x.Name] {
				t.Fatalf("call %d: entry %d %+v: unknown URL, wrong name or mode, or listed twice", i, p, x)
			}
			seen[x.Name] = true
			pos[p][x.Name]++
		}
		orders[strings.Join(d.names(), ",")]++
		// The agent asks the first relay.
		r := get(t, c, http.MethodGet, d.Relays[0].URL+path)
		if r.status != http.StatusOK || !bytes.Equal(r.body, data) {
			t.Fatalf("call %d: GET via %s: status %d, %d bytes", i, d.Relays[0].Name, r.status, len(r.body))
		}
	}
	t.Logf("%d /-/relays calls plus agent GETs in %v", calls, time.Since(start).Round(time.Millisecond))

	// χ² tests against uniform, each rejecting at p < 0.001. Who comes
	// first is what spreads the agents: df = 2, above 13.82. Every
	// position: the same test for three positions at once (Bonferroni,
	// p < 0.001/3), above 16.02. The six orders, df = 5, above 20.52:
	// this is what catches a rotation (round robin), whose positions are
	// all uniform.
	chi2 := func(counts map[string]int, cells []string, total int) float64 {
		expect := float64(total) / float64(len(cells))
		chi := 0.0
		for _, c := range cells {
			d := float64(counts[c]) - expect
			chi += d * d / expect
		}
		return chi
	}
	names := []string{"u-a", "u-b", "u-c"}
	for p, counts := range pos {
		critical := 16.02
		if p == 0 {
			critical = 13.82
		}
		chi := chi2(counts, names, calls)
		t.Logf("position %d: %v, χ² = %.2f", p, counts, chi)
		if chi > critical {
			t.Errorf("position %d: counts %v, χ² = %.2f > %.2f: not uniform", p, counts, chi, critical)
		}
	}
	var perms []string
	for _, a := range names {
		for _, b := range names {
			for _, c := range names {
				if a != b && b != c && a != c {
					perms = append(perms, a+","+b+","+c)
				}
			}
		}
	}
	chi := chi2(orders, perms, calls)
	t.Logf("orders: %v, χ² = %.2f", orders, chi)
	if len(orders) != len(perms) || chi > 20.52 {
		t.Errorf("orders %v, χ² = %.2f > 20.52: the six orders are not equally likely", orders, chi)
	}
	// Every agent GET is in the access log of the relay it went to.
	got := map[string]int{}
	eventually(t, 5*time.Second, "the access logs to count every agent GET", func() error {
		sum := 0
		for _, r := range rs {
			got[r.node] = countRequests(r.Log(), http.MethodGet, path) - before[r.node]
			sum += got[r.node]
		}
		if sum != calls {
			return fmt.Errorf("access logs count %v = %d GETs, want %d", got, sum, calls)
		}
		return nil
	})
	t.Logf("agent GETs per relay: %v", got)
	for _, r := range rs {
		if n := got[r.node]; n < 900 || n > 1100 {
			t.Errorf("%s got %d of %d agent requests, want 1000 ± 10%%", r.node, n, calls)
		}
	}
}

// grpRangeOrigin fronts a testOrigin, recording each request's Range
// header and answering ranged GETs itself with 206 at full speed.
type grpRangeOrigin struct {
	*testOrigin
	URL    string
	data   map[string][]byte
	etags  map[string]string // the ETag each object is set with, also on 206s
	mu     sync.Mutex
	ranges []string // Range header of each GET, "" for none, in order
}

func startGrpRangeOrigin(t testing.TB) *grpRangeOrigin {
	t.Helper()
	o := &grpRangeOrigin{testOrigin: startOrigin(t), data: map[string][]byte{}, etags: map[string]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.URL = "http://" + ln.Addr().String()
	srv := &http.Server{Handler: o, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return o
}

func (o *grpRangeOrigin) set(path string, obj *testObject) {
	o.mu.Lock()
	o.data[path] = obj.data
	o.etags[path] = obj.header.Get("ETag")
	o.mu.Unlock()
	o.testOrigin.set(path, obj)
}

func (o *grpRangeOrigin) rangesSeen() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.ranges)
}

func (o *grpRangeOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rng := r.Header.Get("Range")
	o.mu.Lock()
	if r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, "/-/") {
		o.ranges = append(o.ranges, rng)
	}
	data, ok := o.data[r.URL.Path]
	etag := o.etags[r.URL.Path]
	o.mu.Unlock()
	if rng == "" || !ok {
		o.testOrigin.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Cache-Control", "max-age=3600")
	if etag != "" {
		w.Header().Set("ETag", etag) // If-Range is evaluated against it
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

// TestOwnerDiesMidTransfer: a client downloads through the relay that is
// not the owner; the owner is SIGKILLed mid-transfer; the relay carries on
// from the origin with a Range request and the client gets every byte.
func TestOwnerDiesMidTransfer(t *testing.T) {
	const path = "/pool/owner-dies-32m.bin"
	data := makeData(5, 32<<20)
	origin := startGrpRangeOrigin(t)
	obj := newObject(data, "max-age=3600")
	// A strong ETag, as real origins send: the relay resumes only the
	// representation it pins.
	obj.header.Set("ETag", `"owner-dies-v1"`)
	// Slow, and held at half until the test ends: the owner is killed with
	// its fill in flight.
	obj.chunk, obj.delay, obj.holdAt = 256<<10, 5*time.Millisecond, 16<<20
	origin.set(path, obj)
	rs := startGroup(t, "hq", origin.URL, "o-a", "o-b")
	owner := ownerOf(rs, path)
	other := rs[0]
	if other == owner {
		other = rs[1]
	}
	t.Logf("owner of %s: %s; client goes through %s", path, owner.node, other.node)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dl := startStreamGetAt(ctx, newClient(), other.URL+path, 4<<20)
	waitChan(t, dl.reached, 20*time.Second, "the client to receive 4 MiB through the peer")
	if got := dl.header.Get("X-Relay-Cache"); got != "PEER" {
		t.Fatalf("X-Relay-Cache %q from %s, want PEER: the owner is not the one computed", got, other.node)
	}
	owner.Kill(t)
	t.Logf("owner SIGKILLed with the client at %d bytes, origin at %d of %d", dl.got.Load(), obj.sent.Load(), len(data))
	dl.wantData(t, data, 30*time.Second, "download across the owner's death")

	ranges := origin.rangesSeen()
	t.Logf("origin GETs, Range headers: %q", ranges)
	if len(ranges) != 2 || ranges[0] != "" {
		t.Fatalf("origin GETs with Range %q, want the owner's plain GET then one ranged resume", ranges)
	}
	from, ok := strings.CutPrefix(ranges[1], "bytes=")
	from, open := strings.CutSuffix(from, "-")
	n, err := strconv.Atoi(from)
	if !ok || !open || err != nil || n <= 0 || n >= len(data) {
		t.Errorf("resume Range %q, want bytes=N- with 0 < N < %d", ranges[1], len(data))
	}
	if !strings.Contains(other.Log(), "resuming from upstream") {
		t.Errorf("%s did not log the resume from upstream", other.node)
	}
	// The resumed fill was committed: a second GET is a local hit.
	r := get(t, newClient(), http.MethodGet, other.URL+path)
	wantObject(t, r, data, "GET after the resume")
	if r.cache() != "HIT" {
		t.Errorf("GET after the resume: X-Relay-Cache %q, want HIT", r.cache())
	}
}

// TestSigtermLeavesGroup: SIGTERM makes a relay leave its group before it
// drains: the others drop it at once, well before failure detection would,
// and it exits 0.
func TestSigtermLeavesGroup(t *testing.T) {
	origin := startOrigin(t)
	rs := startGroup(t, "hq", origin.URL, "t-a", "t-b", "t-c")
	start := time.Now()
	rs[2].Signal(syscall.SIGTERM)
	waitListed(t, rs[:2], []string{"t-a", "t-b"}, 2*time.Second)
	t.Logf("SIGTERMed relay left the others' /-/relays after %v", time.Since(start).Round(time.Millisecond))
	ok, err := rs[2].WaitExit(10 * time.Second)
	if !ok {
		t.Fatal("relayd still running 10 s after SIGTERM")
	}
	if err != nil {
		t.Errorf("relayd exit after SIGTERM: %v, want status 0", err)
	}
	t.Logf("exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
}

// TestSigtermExitsPromptlyAfterPeerTraffic: after the relays of a group
// fetched from each other, a relay with nothing in flight exits promptly on
// SIGTERM.
//
// Peers pool connections to each other, and under concurrent misses their
// transports dial connections they end up not using: to the relay these are
// connections that never sent a request. net/http's Shutdown alone counts
// such a connection as busy until it is 5 s old, and the drain waited for
// it: after the traffic below, about half the runs exited after 5.3–6.3 s
// instead of ~0.2 s. One connection that sends nothing stands in for such
// a pooled connection, so that the check does not depend on that race.
func TestSigtermExitsPromptlyAfterPeerTraffic(t *testing.T) {
	const keys = 60
	origin := startOrigin(t)
	for k := range keys {
		origin.set(fmt.Sprintf("/obj/%02d.bin", k), newObject(makeData(uint64(1000+k), 64<<10), "max-age=3600"))
	}
	rs := startGroup(t, "hq", origin.URL, "p-a", "p-b", "p-c")
	c := newClient()
	var wg sync.WaitGroup
	var peerAnswers atomic.Int32
	for k := range keys {
		for _, r := range rs {
			wg.Go(func() {
				resp, err := tryGet(c, http.MethodGet, r.URL+fmt.Sprintf("/obj/%02d.bin", k))
				if err != nil || resp.status != http.StatusOK {
					t.Errorf("GET via %s: %v (status %d)", r.node, err, resp.status)
				}
				if resp.cache() == "PEER" {
					peerAnswers.Add(1)
				}
			})
		}
	}
	wg.Wait()
	if peerAnswers.Load() == 0 {
		t.Fatal("no response came from a peer: the scenario needs peer traffic")
	}
	c.CloseIdleConnections()
	conn, err := net.Dial("tcp", rs[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Once a connection dialed after it has been served, relayd has
	// accepted this one too (the accept queue is FIFO).
	fresh := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 10 * time.Second}
	if r, err := tryGet(fresh, http.MethodGet, rs[0].URL+"/-/healthz"); err != nil || r.status != http.StatusOK {
		t.Fatalf("healthz: %v %d", err, r.status)
	}

	start := time.Now()
	rs[0].Signal(syscall.SIGTERM)
	ok, err := rs[0].WaitExit(15 * time.Second)
	took := time.Since(start)
	if !ok {
		t.Fatal("relayd still running 15 s after SIGTERM")
	}
	if err != nil {
		t.Errorf("relayd exit after SIGTERM: %v, want status 0", err)
	}
	t.Logf("%s exited %v after SIGTERM", rs[0].node, took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("%s exited %v after SIGTERM with no request in flight, want < 2 s: the drain waits for connections that never sent a request", rs[0].node, took.Round(time.Millisecond))
	}
}
