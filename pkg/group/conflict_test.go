package group

import (
	"strings"
	"testing"
	"time"
)

// A second relay with a member's name is refused by gossip; the conflict
// is logged once and listed by Conflicts on the members that hear of it.
func TestDuplicateNameLoggedOnceAndListed(t *testing.T) {
	t.Parallel()
	a := startNode(t, "web-1", "branch", nil)
	b := startNode(t, "web-2", "branch", nil, a.g.Addr())
	eventually(t, 10*time.Second, "web-2 joins web-1", func() bool { return len(b.g.Members()) == 2 })
	clone := startNode(t, "web-1", "branch", nil, b.g.Addr())
	seen := func(n *node) bool {
		for _, c := range n.g.Conflicts() {
			if c.Name == "web-1" && c.Count >= 1 && c.Addr != c.OtherAddr {
				return true
			}
		}
		return false
	}
	eventually(t, 10*time.Second, "a conflict on web-2 or on the clone", func() bool { return seen(b) || seen(clone) })
	// Let the clone retry its join a few times (every 200ms here).
	for _, n := range []*node{b, clone} {
		cs := n.g.Conflicts()
		if len(cs) > 1 {
			t.Errorf("%s lists %d conflicts for one clone: %+v", n.g.Name(), len(cs), cs)
		}
	}
	eventually(t, 10*time.Second, "repeated claims", func() bool {
		for _, n := range []*node{b, clone} {
			if cs := n.g.Conflicts(); len(cs) == 1 && cs[0].Count >= 3 {
				return true
			}
		}
		return false
	})
	for _, n := range []*node{a, b, clone} {
		logs := n.logs.String()
		if c := strings.Count(logs, "use one node name"); c > 1 {
			t.Errorf("%s logged the conflict %d times:\n%s", n.g.Name(), c, logs)
		}
		if c := strings.Count(logs, `"level":"error","from":"memberlist","message":"Conflicting`); c > 0 {
			t.Errorf("%s passed memberlist's per-message conflict line on %d times", n.g.Name(), c)
		}
	}
}
