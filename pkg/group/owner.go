package group

import (
	"hash/fnv"
	"sort"
)

// score is the rendezvous (highest random weight) score of member for key.
// It must be the same in every relay process, so it is a fixed hash
// (FNV-1a) finished with a mixer for an even spread, never a per-process
// seeded one.
func score(member, key string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(member))
	return mix(h.Sum64())
}

// mix is splitmix64's finalizer.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Owner returns the member with the highest score for key; ok is false for
// an empty list. Adding or removing a member moves only the keys that
// member wins or won: about 1/N of them.
func Owner(members []Member, key string) (Member, bool) {
	var best Member
	var bestScore uint64
	found := false
	for _, m := range members {
		s := score(m.Name, key)
		if !found || s > bestScore || (s == bestScore && m.Name < best.Name) {
			best, bestScore, found = m, s, true
		}
	}
	return best, found
}

// Ranked returns members by descending score for key: the owner first,
// then whom the key moves to if the owner is gone, and so on.
func Ranked(members []Member, key string) []Member {
	type scored struct {
		m Member
		s uint64
	}
	all := make([]scored, len(members))
	for i, m := range members {
		all[i] = scored{m, score(m.Name, key)}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].s != all[j].s {
			return all[i].s > all[j].s
		}
		return all[i].m.Name < all[j].m.Name
	})
	out := make([]Member, len(all))
	for i, x := range all {
		out[i] = x.m
	}
	return out
}
