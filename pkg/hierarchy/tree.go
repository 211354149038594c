// The tree below a relay: what children report of themselves, kept by
// their parents and passed up, so an operator at the top sees every
// branch although no parent ever connects to a child.
package hierarchy

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/relayd/relayd/pkg/clock"
)

// Report is what a relay tells its parents about itself, with the
// reports its own children sent it (its subtree).
type Report struct {
	Group      string `json:"group"`
	Node       string `json:"node"`
	Mode       string `json:"mode"`
	URL        string `json:"url,omitempty"`
	Generation uint64 `json:"generation"`
	// Ready is false while the relay should not get traffic; Problem says
	// why (no generation yet, disk full).
	Ready   bool   `json:"ready"`
	Problem string `json:"problem,omitempty"`
	// Upstream is what the relay fetches from.
	Upstream []string    `json:"upstream,omitempty"`
	Cache    *CacheStats `json:"cache,omitempty"`
	// Agents is how many agents hold an event stream open to it.
	Agents int `json:"agents"`
	// Sent is when the relay made the report (its clock).
	Sent     time.Time `json:"sent"`
	Children []Report  `json:"children,omitempty"`
}

// CacheStats is the cache summary in a report.
type CacheStats struct {
	Objects       int64 `json:"objects"`
	Bytes         int64 `json:"bytes"`
	Hits          int64 `json:"hits"`
	Misses        int64 `json:"misses"`
	UpstreamBytes int64 `json:"upstream_bytes"`
}

// Limits on what a parent keeps: a report may describe a large subtree,
// but not an unbounded one.
const (
	maxReportDepth = 16
	maxReportNodes = 20000
	maxNameLen     = 256
)

// ErrBadReport: a report is malformed or too large.
var ErrBadReport = errors.New("hierarchy: bad report")

// Validate checks a report and its subtree.
func (r *Report) Validate() error {
	_, err := r.size()
	return err
}

// size checks a report and counts the relays in it.
func (r *Report) size() (int, error) {
	n := 0
	return n, r.validate(0, &n)
}

func (r *Report) validate(depth int, n *int) error {
	*n++
	switch {
	case depth > maxReportDepth:
		return fmt.Errorf("%w: deeper than %d levels", ErrBadReport, maxReportDepth)
	case *n > maxReportNodes:
		return fmt.Errorf("%w: more than %d relays", ErrBadReport, maxReportNodes)
	case r.Group == "" || r.Node == "":
		return fmt.Errorf("%w: group and node are required", ErrBadReport)
	case len(r.Group) > maxNameLen || len(r.Node) > maxNameLen || len(r.URL) > 2048 || len(r.Problem) > 1024:
		return fmt.Errorf("%w: a name is too long", ErrBadReport)
	}
	for i := range r.Children {
		if err := r.Children[i].validate(depth+1, n); err != nil {
			return err
		}
	}
	return nil
}

// Tree keeps the reports of a relay's children, each until it is TTL old.
type Tree struct {
	ttl   time.Duration
	clock clock.Clock

	mu      sync.Mutex
	reports map[string]held // group + "/" + node
	relays  int             // in all the reports held, subtrees included
}

type held struct {
	r    Report
	size int // relays in r
	got  time.Time
}

// NewTree keeps reports for ttl.
func NewTree(ttl time.Duration, clk clock.Clock) *Tree {
	return &Tree{ttl: ttl, clock: clk, reports: map[string]held{}}
}

// Put stores a child's report, replacing its previous one.
func (t *Tree) Put(r Report) error {
	size, err := r.size()
	if err != nil {
		return err
	}
	key := r.Group + "/" + r.Node
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire()
	// What is held stays bounded whoever posts: maxReportNodes relays in
	// all, not per report. When a report does not fit, the sender holding
	// the most gives way, not the newcomer: a sender re-posting a huge
	// subtree cannot keep the real children out.
	old := t.reports[key].size
	for t.relays-old+size > maxReportNodes {
		bigKey, big := t.largest(key)
		if big.size <= size {
			return fmt.Errorf("%w: holding reports of %d relays already (limit %d), and this one, of %d, would be the largest",
				ErrBadReport, t.relays, maxReportNodes, size)
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
func clampSent(r *Report, now time.Time) {
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
func (t *Tree) Children() []Report {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire()
	out := make([]Report, 0, len(t.reports))
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
		if now.Sub(h.got) > t.ttl {
			delete(t.reports, k)
			t.relays -= h.size
		}
	}
}

// GroupView is one group in /v1/tree: its relays and the groups below it.
type GroupView struct {
	Group    string       `json:"group"`
	Members  []MemberView `json:"members"`
	Children []GroupView  `json:"children,omitempty"`
}

// MemberView is one relay in /v1/tree.
type MemberView struct {
	Node       string `json:"node"`
	Mode       string `json:"mode"`
	URL        string `json:"url,omitempty"`
	Generation uint64 `json:"generation"`
	// Lag is how many generations the relay is behind the one the relay
	// showing the tree serves (never a number a report claims); Ahead is
	// set for a relay that claims a newer one (lag 0).
	Lag     uint64      `json:"lag"`
	Ahead   bool        `json:"ahead,omitempty"`
	Ready   bool        `json:"ready"`
	Problem string      `json:"problem,omitempty"`
	Agents  int         `json:"agents"`
	Cache   *CacheStats `json:"cache,omitempty"`
	// Age is how old the newest report of this relay is ("" for the
	// relay's own group, which it knows first hand).
	Age string `json:"age,omitempty"`
}

// View builds the tree below a group: members are the group's own relays
// (first hand), children the reports its relays hold. Reports of one
// relay that reached the group by several paths are merged, newest wins.
// Lag is counted against own, the generation the relay building the view
// serves: a report claiming a larger one cannot make the others look
// behind.
func View(group string, own uint64, members []Report, children []Report, now time.Time) GroupView {
	return view(group, members, children, own, now, true, 0)
}

func view(group string, members, children []Report, top uint64, now time.Time, own bool, depth int) GroupView {
	g := GroupView{Group: group, Members: []MemberView{}}
	for _, r := range newest(members) {
		m := MemberView{Node: r.Node, Mode: r.Mode, URL: r.URL, Generation: r.Generation, Ready: r.Ready,
			Problem: r.Problem, Agents: r.Agents, Cache: r.Cache}
		if r.Generation < top {
			m.Lag = top - r.Generation
		}
		m.Ahead = r.Generation > top
		if !own && !r.Sent.IsZero() {
			m.Age = now.Sub(r.Sent).Round(time.Second).String()
		}
		g.Members = append(g.Members, m)
	}
	if depth >= maxReportDepth {
		return g
	}
	// Group the children by their group; their own children form the
	// level below.
	byGroup := map[string][]Report{}
	below := map[string][]Report{}
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
		g.Children = append(g.Children, view(name, byGroup[name], below[name], top, now, false, depth+1))
	}
	return g
}

// newest keeps the newest report of each node, sorted by node.
func newest(rs []Report) []Report {
	by := map[string]Report{}
	for _, r := range rs {
		if old, ok := by[r.Node]; !ok || r.Sent.After(old.Sent) {
			by[r.Node] = r
		}
	}
	out := make([]Report, 0, len(by))
	for _, r := range by {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}
