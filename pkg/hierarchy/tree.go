// The tree below a relay: what children report of themselves, kept by
// their parents and passed up, so an operator at the top sees every
// branch although no parent ever connects to a child.
package hierarchy

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/relayd/relayd/pkg/admindoc"
	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/wire"
)

// Health of a relay in /v1/tree, from what it reports and how old its
// newest report is.
const (
	// HealthOK: ready, and its newest report is recent.
	HealthOK = admindoc.HealthOK
	// HealthNotReady: it says it should not get traffic (Problem says why).
	HealthNotReady = admindoc.HealthNotReady
	// HealthStale: it missed reports (older than Ages.Stale).
	HealthStale = admindoc.HealthStale
	// HealthGone: no report for the tree's TTL (Ages.Gone): killed,
	// cut off, or moved to another parent. Still shown for a while.
	HealthGone = admindoc.HealthGone
)

// Ages are the report ages at which a relay shows as stale and as gone.
type Ages struct {
	Stale, Gone time.Duration
}

// AgesFor returns the ages for relays reporting every interval: stale
// after two intervals without a report, gone after three (the TTL).
func AgesFor(interval time.Duration) Ages {
	return Ages{Stale: 2 * interval, Gone: 3 * interval}
}

// health is a relay's health from its readiness and the age of its
// newest report (age < 0: known first hand).
func (a Ages) health(ready bool, age time.Duration) string {
	switch {
	case a.Gone > 0 && age > a.Gone:
		return HealthGone
	case a.Stale > 0 && age > a.Stale:
		return HealthStale
	case !ready:
		return HealthNotReady
	}
	return HealthOK
}

// goneFor is how many TTLs a report is kept after it was last renewed:
// a relay that stopped reporting shows as gone for that long, not
// dropped silently at once.
const goneFor = 10

// Tree keeps the reports of a relay's children. A report older than the
// TTL makes its relay gone; it is kept, and passed up, until it is
// goneFor TTLs old.
type Tree struct {
	ttl   time.Duration
	clock clock.Clock

	mu      sync.Mutex
	reports map[string]held // group + "/" + node
	relays  int             // in all the reports held, subtrees included
}

type held struct {
	r    wire.Report
	size int // relays in r
	got  time.Time
}

// NewTree makes a tree whose reports expire (gone) after ttl.
func NewTree(ttl time.Duration, clk clock.Clock) *Tree {
	return &Tree{ttl: ttl, clock: clk, reports: map[string]held{}}
}

// Put stores a child's report, replacing its previous one.
func (t *Tree) Put(r wire.Report) error {
	size, err := r.Size()
	if err != nil {
		return err
	}
	key := r.Group + "/" + r.Node
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire()
	// What is held stays bounded whoever posts: wire.MaxReportNodes relays in
	// all, not per report. When a report does not fit, the sender holding
	// the most gives way, not the newcomer: a sender re-posting a huge
	// subtree cannot keep the real children out.
	old := t.reports[key].size
	for t.relays-old+size > wire.MaxReportNodes {
		bigKey, big := t.largest(key)
		if big.size <= size {
			return fmt.Errorf("%w: holding reports of %d relays already (limit %d), and this one, of %d, would be the largest",
				wire.ErrBadReport, t.relays, wire.MaxReportNodes, size)
		}
		delete(t.reports, bigKey)
		t.relays -= big.size
	}
	now := t.clock.Now()
	clampSent(&r, now)
	t.relays += size - old
	t.reports[key] = held{r: r, size: size, got: now}
	return nil
}

// maxSentAhead is how far in the future of the receiver's clock a
// report's Sent may be; beyond, it is taken as the time it was received,
// so that ages stay true to what the receiver saw (a relay's clock ahead,
// or a report that lies).
const maxSentAhead = time.Minute

// clampSent clamps the Sent of r and its subtree to now where it is
// further ahead than maxSentAhead.
func clampSent(r *wire.Report, now time.Time) {
	if r.Sent.After(now.Add(maxSentAhead)) {
		r.Sent = now
	}
	for i := range r.Children {
		clampSent(&r.Children[i], now)
	}
}

// largest returns the report holding the most relays, other than but's.
func (t *Tree) largest(but string) (string, held) {
	var (
		bk string
		bh held
	)
	for k, h := range t.reports {
		if k != but && (h.size > bh.size || (h.size == bh.size && k < bk)) {
			bk, bh = k, h
		}
	}
	return bk, bh
}

// Children returns the current reports, by group and node.
func (t *Tree) Children() []wire.Report {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire()
	out := make([]wire.Report, 0, len(t.reports))
	for _, h := range t.reports {
		out = append(out, h.r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		return out[i].Node < out[j].Node
	})
	return out
}

func (t *Tree) expire() {
	now := t.clock.Now()
	for k, h := range t.reports {
		if now.Sub(h.got) > goneFor*t.ttl {
			delete(t.reports, k)
			t.relays -= h.size
		}
	}
}

// GroupView is one group in /v1/tree: its relays and the groups below
// it; the document lives in admindoc.
type GroupView = admindoc.GroupView

// MemberView is one relay in /v1/tree.
type MemberView = admindoc.MemberView

// View builds the tree below a group: members are the group's own relays
// (first hand), children the reports its relays hold. Reports of one
// relay that reached the group by several paths are merged, newest wins.
// Lag is counted against own, the generation the relay building the view
// serves: a report claiming a larger one cannot make the others look
// behind. Health comes from the age of each relay's newest report (by
// its Sent time, against now: the relays' clocks are assumed in step),
// or for the relay's own group from their readiness.
func View(group string, own uint64, members []wire.Report, children []wire.Report, now time.Time, ages Ages) GroupView {
	return view(group, members, children, own, now, ages, true, 0)
}

// freshness is how a report's metadata stands at now: its age when the
// relay reported, its expiry and, once past it, since when it expired.
func freshness(r wire.Report, now time.Time) (age string, expires time.Time, expiredSince string) {
	if !r.MetadataVerified.IsZero() {
		at := r.Sent
		if at.IsZero() {
			at = now
		}
		age = max(0, at.Sub(r.MetadataVerified)).Round(time.Second).String()
	}
	if !r.MetadataExpires.IsZero() && !now.Before(r.MetadataExpires) {
		expiredSince = r.MetadataExpires.UTC().Format(time.RFC3339)
	}
	return age, r.MetadataExpires, expiredSince
}

func view(group string, members, children []wire.Report, top uint64, now time.Time, ages Ages, own bool, depth int) GroupView {
	g := GroupView{Group: group, Members: []MemberView{}}
	for _, r := range newest(members) {
		m := MemberView{Node: r.Node, Mode: r.Mode, URL: r.URL, Generation: r.Generation, Ready: r.Ready,
			Problem: r.Problem, Agents: r.Agents, Cache: r.Cache}
		if r.Generation < top {
			m.Lag = top - r.Generation
		}
		m.Ahead = r.Generation > top
		age := time.Duration(-1)
		if !own && !r.Sent.IsZero() {
			age = now.Sub(r.Sent)
			m.Age = age.Round(time.Second).String()
		}
		m.Health = ages.health(r.Ready, age)
		m.MetadataAge, m.MetadataExpires, m.ExpiredSince = freshness(r, now)
		g.Members = append(g.Members, m)
	}
	if depth >= wire.MaxReportDepth {
		return g
	}
	// Group the children by their group; their own children form the
	// level below.
	byGroup := map[string][]wire.Report{}
	below := map[string][]wire.Report{}
	for _, r := range children {
		byGroup[r.Group] = append(byGroup[r.Group], r)
		below[r.Group] = append(below[r.Group], r.Children...)
	}
	names := make([]string, 0, len(byGroup))
	for name := range byGroup {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		g.Children = append(g.Children, view(name, byGroup[name], below[name], top, now, ages, false, depth+1))
	}
	return g
}

// newest keeps the newest report of each node, sorted by node.
func newest(rs []wire.Report) []wire.Report {
	by := map[string]wire.Report{}
	for _, r := range rs {
		if old, ok := by[r.Node]; !ok || r.Sent.After(old.Sent) {
			by[r.Node] = r
		}
	}
	out := make([]wire.Report, 0, len(by))
	for _, r := range by {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}
