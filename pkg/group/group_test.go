package group

import (
	"context"
	"crypto/rand"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/clock"
)

// logBuf collects log lines of a node, to check refusals are logged.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type node struct {
	g      *Group
	cancel context.CancelFunc
	done   chan struct{}
	logs   *logBuf
}

// crash stops gossip without leaving, as a killed relay would.
func (n *node) crash() {
	n.g.mu.Lock()
	n.g.down = true // Run must not leave: this node crashed
	n.g.mu.Unlock()
	_ = n.g.ml.Shutdown()
	n.stop()
}

func (n *node) stop() {
	n.cancel()
	<-n.done
}

func startNode(t testing.TB, name, group string, key []byte, join ...string) *node {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Name, cfg.Group, cfg.Bind, cfg.Key, cfg.Join = name, group, "127.0.0.1:0", key, join
	cfg.RejoinInterval = 200 * time.Millisecond
	lb := &logBuf{}
	g, err := New(cfg, Meta{Mode: "proxy", URL: "http://" + name, Ready: true}, zerolog.New(lb), clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{g: g, cancel: cancel, done: make(chan struct{}), logs: lb}
	go func() { _ = g.Run(ctx); close(n.done) }()
	t.Cleanup(n.stop)
	return n
}

func eventually(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func healthyNames(g *Group) string {
	var s []string
	for _, m := range g.Healthy() {
		s = append(s, m.Name)
	}
	return strings.Join(s, ",")
}

func TestFormDetectLeave(t *testing.T) {
	t.Parallel()
	a := startNode(t, "a", "hq", nil)
	b := startNode(t, "b", "hq", nil, a.g.Addr())
	c := startNode(t, "c", "hq", nil, a.g.Addr())
	for _, n := range []*node{a, b, c} {
		eventually(t, 5*time.Second, "3 healthy members", func() bool { return healthyNames(n.g) == "a,b,c" })
	}
	// Readiness travels in the metadata: a relay that is not ready is not
	// healthy.
	if err := c.g.SetMeta(func(m *Meta) { m.Ready = false; m.Generation = 7 }); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "c not ready seen by a", func() bool { return healthyNames(a.g) == "a,b" })
	if err := c.g.SetMeta(func(m *Meta) { m.Ready = true }); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "c ready again", func() bool { return healthyNames(a.g) == "a,b,c" })
	for _, m := range a.g.Members() {
		if m.Name == "c" && m.Meta.Generation != 7 {
			t.Fatalf("generation of c = %d, want 7", m.Meta.Generation)
		}
	}
	// A graceful leave is seen at once (no failure detection needed).
	c.stop()
	d := eventually(t, 2*time.Second, "c left", func() bool { return healthyNames(a.g) == "a,b" })
	t.Logf("graceful leave seen after %s", d)
	for _, m := range a.g.Members() {
		if m.Name == "c" && m.State != "gone" {
			t.Fatalf("c state %q, want gone", m.State)
		}
	}
}

func TestDeadNodeLeavesHealthySetWithin5s(t *testing.T) {
	t.Parallel()
	a := startNode(t, "a", "hq", nil)
	b := startNode(t, "b", "hq", nil, a.g.Addr())
	c := startNode(t, "c", "hq", nil, a.g.Addr())
	eventually(t, 5*time.Second, "3 members", func() bool { return healthyNames(a.g) == "a,b,c" && healthyNames(b.g) == "a,b,c" })
	// Die without leaving: gossip stops answering.
	c.crash()
	d := eventually(t, 5*time.Second, "dead c out of the healthy set", func() bool {
		return healthyNames(a.g) == "a,b" && healthyNames(b.g) == "a,b"
	})
	t.Logf("dead node detected after %s", d)
}

func TestRefusesOtherGroupAndWrongKey(t *testing.T) {
	t.Parallel()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	other := make([]byte, 32)
	_, _ = rand.Read(other)
	a := startNode(t, "a", "hq", key)
	b := startNode(t, "b", "hq", key, a.g.Addr())
	eventually(t, 5*time.Second, "a and b", func() bool { return healthyNames(a.g) == "a,b" })

	intruder := startNode(t, "x", "branch", key, a.g.Addr())
	wrongKey := startNode(t, "y", "hq", other, a.g.Addr())
	noKey := startNode(t, "z", "hq", nil, a.g.Addr())
	// Both sides log the refusal.
	eventually(t, 5*time.Second, "refusals logged", func() bool {
		return strings.Contains(intruder.logs.String(), "could not join") &&
			strings.Contains(wrongKey.logs.String(), "could not join") &&
			strings.Contains(noKey.logs.String(), "could not join") &&
			strings.Contains(a.logs.String(), "label") &&
			strings.Contains(a.logs.String(), "decrypt")
	})
	for _, n := range []*node{a, b} {
		if h := healthyNames(n.g); h != "a,b" {
			t.Fatalf("%s sees %s; intruders got in", n.g.Name(), h)
		}
	}
	for _, n := range []*node{intruder, wrongKey, noKey} {
		if len(n.g.Members()) != 1 {
			t.Fatalf("%s sees %d members", n.g.Name(), len(n.g.Members()))
		}
	}
}

func TestMetaLimit(t *testing.T) {
	t.Parallel()
	m := Meta{Group: strings.Repeat("g", 64), Mode: "mirror", URL: "https://" + strings.Repeat("r", 200) + ":20081", Generation: math.MaxUint64, Ready: true}
	b, err := EncodeMeta(m, memberlist.MetaMaxSize)
	if err != nil {
		t.Fatalf("a realistic worst case does not fit: %v", err)
	}
	back, err := DecodeMeta(b)
	if err != nil || back != m {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	m.URL = "https://" + strings.Repeat("r", 600)
	if _, err := EncodeMeta(m, memberlist.MetaMaxSize); err == nil {
		t.Fatal("oversized meta accepted")
	}
	cfg := DefaultConfig()
	cfg.Name, cfg.Group, cfg.Bind = "n", "g", "127.0.0.1:0"
	if _, err := New(cfg, m, zerolog.Nop(), clock.Real{}); err == nil {
		t.Fatal("New accepted oversized meta")
	}
}

func TestOwnerMovesAboutOneNth(t *testing.T) {
	t.Parallel()
	members := func(n int) []Member {
		var m []Member
		for i := range n {
			m = append(m, Member{Name: fmt.Sprintf("relay-%d", i)})
		}
		return m
	}
	const keys = 20000
	for _, n := range []int{3, 10} {
		before, after := members(n), members(n+1)
		counts := map[string]int{}
		moved := 0
		for k := range keys {
			key := fmt.Sprintf("pool/main/p/pkg_%d.deb", k)
			o1, _ := Owner(before, key)
			o2, _ := Owner(after, key)
			counts[o1.Name]++
			if o1.Name != o2.Name {
				moved++
				if o2.Name != fmt.Sprintf("relay-%d", n) {
					t.Fatalf("key moved between old members %s → %s", o1.Name, o2.Name)
				}
			}
		}
		want := float64(keys) / float64(n+1)
		if f := float64(moved); f < 0.8*want || f > 1.2*want {
			t.Errorf("%d→%d members: %d keys moved, want about %.0f", n, n+1, moved, want)
		}
		for name, c := range counts {
			if f := float64(c); f < 0.85*float64(keys)/float64(n) || f > 1.15*float64(keys)/float64(n) {
				t.Errorf("%d members: %s owns %d of %d keys", n, name, c, keys)
			}
		}
	}
}

func TestGenerateKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path, err := GenerateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	key, err := LoadKey(path)
	if err != nil || len(key) != 32 {
		t.Fatalf("LoadKey: %d bytes, %v", len(key), err)
	}
	if _, err := GenerateKey(dir); err == nil {
		t.Fatal("GenerateKey overwrote a key")
	}
}

// Ranked starts with Owner, and the key falls to the next in rank when
// the owner goes: every member computes the same order.
func TestRankedFallsToTheNext(t *testing.T) {
	t.Parallel()
	var ms []Member
	for i := range 5 {
		ms = append(ms, Member{Name: fmt.Sprintf("relay-%d", i)})
	}
	for i := range 200 {
		key := fmt.Sprintf("pool/pkg-%d.deb", i)
		r := Ranked(ms, key)
		owner, _ := Owner(ms, key)
		if len(r) != len(ms) || r[0].Name != owner.Name {
			t.Fatalf("%s: ranked %v, owner %s", key, r, owner.Name)
		}
		without := slices.DeleteFunc(slices.Clone(ms), func(m Member) bool { return m.Name == owner.Name })
		if next, _ := Owner(without, key); next.Name != r[1].Name {
			t.Fatalf("%s: without the owner it goes to %s, ranked second is %s", key, next.Name, r[1].Name)
		}
	}
}

// A member that left stays listed as gone for ForgetAfter, then is
// forgotten; the owner choice never counts it.
func TestGoneMembersForgotten(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Unix(1700000000, 0))
	g := memberGroup(t, 3, clk)
	tell(t, g, "relay-02", "gone")
	names := func(ms []Member) string {
		var s []string
		for _, m := range ms {
			s = append(s, m.Name+"="+m.State)
		}
		return strings.Join(s, ",")
	}
	if got := names(g.Members()); got != "relay-00=alive,relay-01=alive,relay-02=gone" {
		t.Fatalf("members %s", got)
	}
	if got := names(g.Healthy()); got != "relay-00=alive,relay-01=alive" {
		t.Fatalf("healthy %s", got)
	}
	for i := range 100 {
		key := fmt.Sprintf("k%d", i)
		if o, _ := g.Owner(key); o.Name == "relay-02" {
			t.Fatalf("%s owned by a gone member", key)
		}
		if r := g.Owners(key); len(r) != 2 {
			t.Fatalf("%s ranked among %d members, want 2", key, len(r))
		}
	}
	clk.Advance(g.cfg.ForgetAfter - time.Second)
	g.forget()
	if got := names(g.Members()); got != "relay-00=alive,relay-01=alive,relay-02=gone" {
		t.Fatalf("before ForgetAfter: members %s", got)
	}
	clk.Advance(2 * time.Second)
	g.forget()
	if got := names(g.Members()); got != "relay-00=alive,relay-01=alive" {
		t.Fatalf("after ForgetAfter: members %s", got)
	}
	// A forgotten member that comes back is a member again.
	tell(t, g, "relay-02", "alive")
	if got := names(g.Healthy()); got != "relay-00=alive,relay-01=alive,relay-02=alive" {
		t.Fatalf("after its return: healthy %s", got)
	}
}
