// Identity conflicts on streams: a child relay's group and node name held
// by two open streams — from two addresses (both are kept), or from one
// address, where the newer replaces the older — which is what two relays
// sharing one name (cloned hosts) look like from their parent.
package events

import (
	"slices"
	"sort"
	"strings"
	"time"
)

// Conflict is a child relay identity (group and node name) that two open
// streams claimed: from two addresses (Addrs holds both; the streams
// stay), or from one (the newer replaced the older: two relays with one
// name behind one address take turns, backing off).
type Conflict struct {
	// Identity is "group/node".
	Identity string    `json:"identity"`
	Addrs    []string  `json:"addrs"`
	Count    int64     `json:"count"`
	First    time.Time `json:"first_seen"`
	Last     time.Time `json:"last_seen"`
}

// maxConflicts bounds the conflicts kept; the least recent goes first.
const maxConflicts = 64

// recordConflict counts a claim of sub's identity while a stream from
// addrs held it, and returns the count so far (agents are not recorded:
// theirs are mostly reconnects; they count 1).
func (s *Streams) recordConflict(sub *Sub, addrs ...string) int64 {
	if !sub.client.Relay {
		return 1
	}
	addrs = append([]string{sub.addr}, addrs...)
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	id := clientKey(sub.client) + "@" + strings.Join(addrs, ",")
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	cf := s.conflicts[id]
	if cf == nil {
		if len(s.conflicts) >= maxConflicts {
			var oldest string
			for k, c := range s.conflicts {
				if oldest == "" || c.Last.Before(s.conflicts[oldest].Last) {
					oldest = k
				}
			}
			delete(s.conflicts, oldest)
		}
		cf = &Conflict{Identity: sub.client.Group + "/" + sub.client.ID, Addrs: addrs, First: now}
		s.conflicts[id] = cf
	}
	cf.Count++
	cf.Last = now
	return cf.Count
}

// trackRelay notes sub among the open streams of its relay identity and
// returns the other addresses that hold one; s.mu is held.
func (s *Streams) trackRelay(sub *Sub) (elsewhere []string) {
	if !sub.client.Relay || sub.client.ID == "" {
		return nil
	}
	k := clientKey(sub.client)
	for other := range s.relays[k] {
		if other.addr != sub.addr {
			elsewhere = append(elsewhere, other.addr)
		}
	}
	if s.relays[k] == nil {
		s.relays[k] = map[*Sub]struct{}{}
	}
	s.relays[k][sub] = struct{}{}
	return elsewhere
}

// untrackRelay forgets sub's stream; s.mu is held.
func (s *Streams) untrackRelay(sub *Sub) {
	k := clientKey(sub.client)
	if m := s.relays[k]; m != nil {
		delete(m, sub)
		if len(m) == 0 {
			delete(s.relays, k)
		}
	}
}

// Conflicts lists the child relay identities two streams claimed, by
// identity.
func (s *Streams) Conflicts() []Conflict {
	s.mu.Lock()
	out := make([]Conflict, 0, len(s.conflicts))
	for _, cf := range s.conflicts {
		out = append(out, *cf)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		return out[i].Identity+strings.Join(out[i].Addrs, ",") < out[j].Identity+strings.Join(out[j].Addrs, ",")
	})
	return out
}

// StreamConflicts is the stream writer's Conflicts, none before it
// started.
func (h *Hub) StreamConflicts() []Conflict {
	h.mu.Lock()
	s := h.streams
	h.mu.Unlock()
	if s == nil {
		return nil
	}
	return s.Conflicts()
}
