// Identity conflicts on streams: a child relay's group and node name
// whose stream another still-open stream from the same address replaced,
// which is what two relays sharing one name (cloned hosts) look like from
// their parent.
package events

import (
	"sort"
	"time"
)

// Conflict is a child relay identity (group and node name) whose stream
// was replaced by another from the same address: two relays with one
// name (a cloned host) take turns.
type Conflict struct {
	// Identity is "group/node".
	Identity string    `json:"identity"`
	Addr     string    `json:"addr"`
	Count    int64     `json:"count"`
	First    time.Time `json:"first_seen"`
	Last     time.Time `json:"last_seen"`
}

// maxConflicts bounds the conflicts kept; the least recent goes first.
const maxConflicts = 64

// recordConflict counts a replacement of sub's identity and returns the
// count (agents, whose replacements are mostly reconnects, count 1).
func (s *Streams) recordConflict(sub *Sub) int64 {
	if !sub.client.Relay {
		return 1
	}
	id := identity(sub)
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
		cf = &Conflict{Identity: sub.client.Group + "/" + sub.client.ID, Addr: sub.addr, First: now}
		s.conflicts[id] = cf
	}
	cf.Count++
	cf.Last = now
	return cf.Count
}

// Conflicts lists the child relay identities replaced from one address,
// by identity.
func (s *Streams) Conflicts() []Conflict {
	s.mu.Lock()
	out := make([]Conflict, 0, len(s.conflicts))
	for _, cf := range s.conflicts {
		out = append(out, *cf)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Identity+out[i].Addr < out[j].Identity+out[j].Addr })
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
