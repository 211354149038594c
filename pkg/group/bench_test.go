package group

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/clock"
)

// benchMember is one gossiping node of a benchmark.
type benchMember struct {
	g      *Group
	cancel context.CancelFunc
	done   chan struct{}
}

// crash stops gossip without leaving, as a killed relay would.
func (m *benchMember) crash() {
	m.g.mu.Lock()
	m.g.down = true // Run must not leave: this node crashed
	m.g.mu.Unlock()
	_ = m.g.ml.Shutdown()
	m.cancel()
	<-m.done
}

func startBenchMember(b *testing.B, name string, join ...string) *benchMember {
	b.Helper()
	cfg := DefaultConfig()
	cfg.Name, cfg.Group, cfg.Bind, cfg.Join = name, "bench", "127.0.0.1:0", join
	cfg.RejoinInterval = 200 * time.Millisecond
	g, err := New(cfg, Meta{Mode: "proxy", URL: "http://" + name, Ready: true}, zerolog.Nop(), clock.Real{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &benchMember{g: g, cancel: cancel, done: make(chan struct{})}
	go func() { _ = g.Run(ctx); close(m.done) }()
	return m
}

// benchWait polls cond every 5 ms until it holds, failing after d, and
// returns how long it took.
func benchWait(b *testing.B, d time.Duration, what string, cond func() bool) time.Duration {
	b.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			b.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// BenchmarkConvergence measures, for groups of 3, 10 and 50 relays in one
// process on 127.0.0.1 with the LAN defaults, the time from starting the
// nodes (all joining the first) until every node sees all of them healthy
// ("converge-ms"), and the time from one node crashing (gossip stopped,
// no leave) until every other node has dropped it ("detect-ms"). Each
// iteration runs the whole scenario; run it once:
//
//	go test -run='^$' -bench=Convergence -benchtime=1x ./pkg/group
func BenchmarkConvergence(b *testing.B) {
	for _, n := range []int{3, 10, 50} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			var converge, detect time.Duration
			for i := range b.N {
				c, d := convergeOnce(b, n, i)
				converge += c
				detect += d
			}
			b.ReportMetric(float64(converge.Milliseconds())/float64(b.N), "converge-ms")
			b.ReportMetric(float64(detect.Milliseconds())/float64(b.N), "detect-ms")
			b.ReportMetric(0, "ns/op") // the scenario's wall time says nothing
		})
	}
}

func convergeOnce(b *testing.B, n, iter int) (converge, detect time.Duration) {
	b.Helper()
	ms := make([]*benchMember, 0, n)
	defer func() {
		var wg sync.WaitGroup
		for _, m := range ms {
			wg.Go(func() {
				select {
				case <-m.done:
				default:
					m.crash() // faster than n nodes leaving at once
				}
			})
		}
		wg.Wait()
	}()
	start := time.Now()
	ms = append(ms, startBenchMember(b, fmt.Sprintf("g%d-r%d-%03d", n, iter, 0)))
	seed := ms[0].g.Addr()
	for j := 1; j < n; j++ {
		ms = append(ms, startBenchMember(b, fmt.Sprintf("g%d-r%d-%03d", n, iter, j), seed))
	}
	healthyEverywhere := func(live []*benchMember, want int) bool {
		for _, m := range live {
			if len(m.g.Healthy()) != want {
				return false
			}
		}
		return true
	}
	// 50 nodes joining one seed at once sometimes leave a node missing a
	// member or two until a periodic push-pull (every 15 s, scaled to 30 s
	// above 32 nodes) repairs it: allow for that.
	benchWait(b, 90*time.Second, fmt.Sprintf("%d nodes to converge", n), func() bool { return healthyEverywhere(ms, n) })
	converge = time.Since(start)

	// Crash the last node, never the seed.
	victim := ms[n-1]
	start = time.Now()
	victim.crash()
	benchWait(b, 60*time.Second, "the crashed node to be dropped everywhere", func() bool {
		return healthyEverywhere(ms[:n-1], n-1)
	})
	return converge, time.Since(start)
}

// BenchmarkOwner is the rendezvous choice of an owner for one key among 3,
// 10 and 50 members: done on every miss. With -benchtime=1x its ns/op is
// one call; give it the default benchtime for a real figure.
func BenchmarkOwner(b *testing.B) {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("pool/main/r/relayd/relayd_%d.%d_amd64.deb", i/10, i%10)
	}
	for _, n := range []int{3, 10, 50} {
		members := make([]Member, n)
		for i := range members {
			members[i] = Member{Name: fmt.Sprintf("relay-%02d", i), State: "alive", Meta: Meta{Ready: true}}
		}
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok := Owner(members, keys[i%len(keys)]); !ok {
					b.Fatal("no owner")
				}
				i++
			}
		})
	}
}
