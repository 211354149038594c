package treeauth

import (
	"container/heap"
	"sync"
)

// MaxSeen bounds the signatures a Verifier remembers to refuse their
// second use: ~80 bytes each, 2.6 MB at most. A parent takes a few
// signed requests per child and report interval; 32,768 within the
// window of 2 × MaxSkew is some 50 a second.
const MaxSeen = 1 << 15

// seen remembers the signatures verified within the time window, to
// refuse a replay. Only signatures that hold reach it (the MAC is checked
// first), so only tree-key holders can fill it. When it is full it
// forgets the signature signed earliest and from then on refuses any
// signature signed at or before that time (floor): a full cache makes
// the window narrower, never lets a replay through.
type seen struct {
	mu    sync.Mutex
	macs  map[[16]byte]struct{}
	byT   seenHeap
	floor int64 // signatures signed at or before floor are refused
}

type seenEntry struct {
	t   int64
	mac [16]byte
}

// seenHeap is a min-heap on the signing time.
type seenHeap []seenEntry

func (h seenHeap) Len() int           { return len(h) }
func (h seenHeap) Less(i, j int) bool { return h[i].t < h[j].t }
func (h seenHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *seenHeap) Push(x any)        { *h = append(*h, x.(seenEntry)) }
func (h *seenHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// use records mac, signed at t, and reports whether it is new: false for
// a signature seen before or signed at or before the floor. Signatures
// signed before oldest (now - MaxSkew) are forgotten: they are refused by
// the time check anyway.
func (s *seen) use(mac []byte, t, oldest int64, limit int) bool {
	var k [16]byte
	copy(k[:], mac)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.macs == nil {
		s.macs = map[[16]byte]struct{}{}
	}
	for len(s.byT) > 0 && s.byT[0].t < oldest {
		delete(s.macs, heap.Pop(&s.byT).(seenEntry).mac)
	}
	if _, ok := s.macs[k]; ok || t <= s.floor {
		return false
	}
	for len(s.byT) >= limit {
		e := heap.Pop(&s.byT).(seenEntry)
		delete(s.macs, e.mac)
		s.floor = max(s.floor, e.t)
	}
	if t <= s.floor {
		return false
	}
	s.macs[k] = struct{}{}
	heap.Push(&s.byT, seenEntry{t: t, mac: k})
	return true
}
