package hostile

// The TUF spec's attacks against agents, end to end: endless data (each
// metadata file read at most to its bound, the memory of the agent
// bounded) and slow retrieval (a dripping relay is left for the next;
// alone, it is given up within the agent's bounds).

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/internal/proctest"
)

// padded is b followed by n spaces: the same JSON, longer.
func padded(b []byte, n int) []byte { return append(bytes.Clone(b), bytes.Repeat([]byte{' '}, n)...) }

// Endless data: a timestamp past its 16 KiB bound, a snapshot or a role
// longer than the length the metadata naming it gives: refused, naming
// the file and the bound, nothing installed.
func TestTUFEndlessDataListed(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		want string
		do   func(t *testing.T, a *attack, evil *proctest.Proc) string // the bound said
	}{
		{"timestamp", "timestamp.json", func(t *testing.T, a *attack, evil *proctest.Proc) string {
			setEvil(t, evil, metaPath+"=endless")
			return "more than 16384 bytes"
		}},
		{"snapshot", "2.snapshot.json", func(t *testing.T, a *attack, _ *proctest.Proc) string {
			n := a.tr.latest(t, "snapshot")
			b := a.tr.meta(t, n)
			a.forgeTimestamp(t, func(md *metadata.Metadata[metadata.TimestampType]) {
				md.Signed.Meta["snapshot.json"].Length = int64(len(b))
			})
			a.tr.serve(t, n, padded(b, 100_000))
			return fmt.Sprintf("the limit is %d", len(b))
		}},
		{"rest", "2.rest.json", func(t *testing.T, a *attack, _ *proctest.Proc) string {
			n := a.tr.latest(t, "rest")
			b := a.tr.meta(t, n)
			sn := a.tr.latest(t, "snapshot")
			a.tr.serve(t, sn, forge(t, a.tr.meta(t, sn), func(md *metadata.Metadata[metadata.SnapshotType]) {
				md.Signed.Meta["rest.json"].Length = int64(len(b))
			}, a.keys["snapshot"]))
			a.tr.serve(t, n, padded(b, 100_000))
			return fmt.Sprintf("the limit is %d", len(b))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a := newAttack(t)
			evil := startEvil(t, a.tr.Dir)
			a.evil = evil.URL
			bound := c.do(t, a, evil)
			a.refused(t, c.want, "too large", bound)
		})
	}
}

// Endless data without a listed length: a snapshot that never ends,
// behind a genuine timestamp (which gives no length), with the default
// catalog-max. The agent reads at most that (spooled to disk), gives up
// naming the file, installs nothing, and its RSS stays far below the
// bytes it was sent.
func TestTUFEndlessDataUnlisted(t *testing.T) {
	t.Parallel()
	a := newAttack(t)
	evil := startEvil(t, a.tr.Dir, "/-/tuf/"+a.tr.latest(t, "snapshot")+"=endless")
	argv := []string{relaydBin, "agent", "sync", "--quiet", "--relay", evil.URL, "--root", a.tr.Root, "--out", a.out, "--retry-budget", "300ms"}
	p := proctest.Start(t, "agent", argv, nil, "")
	peak := rssPeak(t, p.Pid())
	if exited, _ := p.WaitExit(90 * time.Second); !exited {
		t.Fatal("the agent did not give up on an endless snapshot")
	}
	rss := peak()
	if p.WaitErr() == nil {
		t.Fatal("the agent synced from an endless snapshot")
	}
	t.Logf("agent peak RSS %d MiB; %s", rss>>20, lastLines(p.Log(), 2))
	if !strings.Contains(p.Log(), "2.snapshot.json") || !strings.Contains(p.Log(), "too large") {
		t.Errorf("the agent's error does not name the snapshot as too large:\n%s", p.Log())
	}
	if rss > 48<<20 {
		t.Errorf("agent peak RSS %d MiB reading an endless snapshot, want at most 48 MiB (what it reads is spooled)", rss>>20)
	}
	wantOut(t, a.out, map[string][]byte{a.path: a.v1})
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// Slow retrieval: a relay dripping the timestamp (or generation 2's
// snapshot) a byte a second. Alone, the agent gives it up within its
// bounds, saying the relay stalled, nothing installed; with a good relay
// beside it, the agent moves on after the stall timeout and syncs
// generation 2.
func TestTUFSlowRetrieval(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"timestamp.json", "2.snapshot.json"} {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			a := newAttack(t)
			drip := startEvil(t, a.tr.Dir, "/-/tuf/"+file+"=drip:1000")
			good := a.evil
			r := agentSync(t, a.tr.Root, a.out, []string{drip.URL}, "--stall-timeout", "2s")
			t.Logf("the dripping relay alone: refused in %s: %s", r.took.Round(time.Millisecond), strings.TrimSpace(r.stderr))
			if r.err == nil || !strings.Contains(r.stderr, "stalled") {
				t.Errorf("sync from the dripping relay alone: %s\nwant a failure saying it stalled", r)
			}
			if r.took > 30*time.Second {
				t.Errorf("the agent gave up on the dripping relay after %s, want within 30 s (stall 2 s)", r.took)
			}
			wantOut(t, a.out, map[string][]byte{a.path: a.v1})
			// The agent tries the relays in random order: sync into fresh
			// directories until a sync has met the dripping relay first.
			for try := 1; ; try++ {
				out, before := t.TempDir(), proctest.CountRequests(drip.Log(), "GET", "/-/tuf/"+file)
				r = agentSync(t, a.tr.Root, out, []string{drip.URL, good}, "--stall-timeout", "2s")
				if r.err != nil {
					t.Fatalf("sync from the dripping relay and a good one: %s", r)
				}
				wantOut(t, out, map[string][]byte{a.path: a.v2})
				if proctest.CountRequests(drip.Log(), "GET", "/-/tuf/"+file) > before {
					t.Logf("try %d met the dripping relay and synced in %s", try, r.took.Round(time.Millisecond))
					break
				}
				if try == 10 {
					t.Fatal("ten syncs never asked the dripping relay")
				}
			}
		})
	}
}
