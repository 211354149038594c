// Duplicate node names: two relays of one group with the same name
// (cloned VMs: the name defaults to the host name). memberlist keeps the
// first address it learnt for a name and refuses the other each time it
// hears of it; here that is recorded, logged once per name and address,
// and shown (Conflicts) instead of logged at every gossip round.
package group

import (
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// Conflict is a node name that two gossip addresses claim.
type Conflict struct {
	// Name is the node name both use.
	Name string `json:"name"`
	// Addr is the address this node knows the name at (its own when the
	// name is this node's); OtherAddr the address that claimed it too.
	Addr      string `json:"addr"`
	OtherAddr string `json:"other_addr"`
	// Count is how many times the claim was heard and refused.
	Count int64     `json:"count"`
	First time.Time `json:"first_seen"`
	Last  time.Time `json:"last_seen"`
}

// maxConflicts bounds the conflicts kept; the least recent goes first.
const maxConflicts = 64

// conflicts is memberlist's ConflictDelegate.
type conflicts Group

var _ memberlist.ConflictDelegate = (*conflicts)(nil)

// NotifyConflict is called when a node claims a name known at another
// address: memberlist refuses it.
func (c *conflicts) NotifyConflict(existing, other *memberlist.Node) {
	g := (*Group)(c)
	now := g.clock.Now()
	key := existing.Name + "\x00" + other.Address()
	g.conflictMu.Lock()
	cf, seen := g.conflicts[key]
	if !seen {
		if len(g.conflicts) >= maxConflicts {
			g.dropOldestConflict()
		}
		cf = &Conflict{Name: existing.Name, Addr: existing.Address(), OtherAddr: other.Address(), First: now}
		g.conflicts[key] = cf
	}
	cf.Count++
	cf.Last = now
	g.conflictMu.Unlock()
	if !seen {
		g.log.Error().Str("peer", existing.Name).Str("addr", existing.Address()).Str("other_addr", other.Address()).
			Msg("two relays of this group use one node name: the second is refused by gossip; give each its own --node (see conflicts in relayd status)")
	}
}

// dropOldestConflict forgets the least recent conflict; conflictMu held.
func (g *Group) dropOldestConflict() {
	var oldest string
	for k, cf := range g.conflicts {
		if oldest == "" || cf.Last.Before(g.conflicts[oldest].Last) {
			oldest = k
		}
	}
	delete(g.conflicts, oldest)
}

// Conflicts returns the node names claimed by two addresses, by name.
func (g *Group) Conflicts() []Conflict {
	g.conflictMu.Lock()
	defer g.conflictMu.Unlock()
	out := make([]Conflict, 0, len(g.conflicts))
	for _, cf := range g.conflicts {
		out = append(out, *cf)
	}
	slices.SortFunc(out, func(a, b Conflict) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.OtherAddr, b.OtherAddr)
	})
	return out
}
