// Generations older than the live one that the mirror keeps (issue 15,
// staged rollouts): while a ring of the rollout gates is open at an older
// generation than the newest, its agents install that one, so its objects
// stay on disk (pinned) and servable at their consistent names
// (dir/<sha256>.name), even after the relay followed the newest for
// pre-positioning. Config.Keep says which generations; a generation is
// let go (its blobs collected like any older generation's) once no ring
// is at it.
package mirror

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/object"
)

// metaHeld keeps the held generations across restarts.
const metaHeld = "mirror.held"

// maxHeld bounds the held generations: one per ring at most.
const maxHeld = 16

// heldState is what the store keeps of the held generations.
type heldState struct {
	Catalogs []stored `json:"catalogs"`
}

// Held returns the generations kept besides the live one, oldest first.
func (m *Mirror) Held() []uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]uint64, 0, len(m.held))
	for g := range m.held {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

// keepSet is the generations Config.Keep asks for.
func (m *Mirror) keepSet() map[uint64]bool {
	if m.cfg.Keep == nil {
		return nil
	}
	keep := map[uint64]bool{}
	for _, g := range m.cfg.Keep() {
		keep[g] = true
	}
	return keep
}

// nextHeld is the held set once l goes live: the held generations and
// the live one l replaces, those Keep still asks for, l's own excepted.
func (m *Mirror) nextHeld(prev *Live, l *Live) map[uint64]*catalog.Catalog {
	keep := m.keepSet()
	next := map[uint64]*catalog.Catalog{}
	m.mu.RLock()
	for g, c := range m.held {
		if keep[g] && g != l.Catalog.Generation {
			next[g] = c
		}
	}
	m.mu.RUnlock()
	if prev != nil && keep[prev.Catalog.Generation] && prev.Catalog.Generation != l.Catalog.Generation {
		next[prev.Catalog.Generation] = prev.Catalog
	}
	for len(next) > maxHeld { // never more than the rings: drop the oldest
		delete(next, slices.Min(slices.Collect(maps.Keys(next))))
	}
	return next
}

// saveHeld records the held set durably.
func (m *Mirror) saveHeld(held map[uint64]*catalog.Catalog) error {
	var s heldState
	for _, c := range held {
		s.Catalogs = append(s.Catalogs, stored{Generation: c.Generation, Published: c.Published, Objects: c.Objects})
	}
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("mirror: encode the held generations: %w", err)
	}
	return m.store.PutMeta(metaHeld, b)
}

// restoreHeld loads the held generations the store keeps.
func (m *Mirror) restoreHeld() {
	b, err := m.store.GetMeta(metaHeld)
	if err != nil || len(b) == 0 {
		return
	}
	var s heldState
	if err := json.Unmarshal(b, &s); err != nil {
		m.log.Error().Err(err).Msg("stored held generations do not decode; ignoring them")
		return
	}
	m.held = map[uint64]*catalog.Catalog{}
	for _, st := range s.Catalogs {
		if c, err := catalog.New(st.Generation, st.Published, st.Objects); err == nil {
			m.held[c.Generation] = c
		}
	}
}

// heldDigests adds to want the selected objects of the held generations,
// one per digest.
func (m *Mirror) heldDigests(held map[uint64]*catalog.Catalog, want map[digest.Digest]catalog.Object) map[digest.Digest]catalog.Object {
	all := make(map[digest.Digest]catalog.Object, len(want))
	for d, o := range want {
		all[d] = o
	}
	if !m.cfg.Serve {
		return all
	}
	for _, c := range held {
		for _, o := range c.Objects {
			if _, ok := all[o.Digest]; !ok && m.filter.Match(o.Path) {
				all[o.Digest] = o
			}
		}
	}
	return all
}

// Release lets go of the held generations Config.Keep no longer asks for
// (a ring moved on): their blobs are collected like any older
// generation's. The node calls it when new gates are accepted.
func (m *Mirror) Release() {
	m.syncMu.Lock() // not while a sync pins and collects
	defer m.syncMu.Unlock()
	l := m.Live()
	if l == nil {
		return
	}
	keep := m.keepSet()
	m.mu.RLock()
	var drop []uint64
	for g := range m.held {
		if !keep[g] {
			drop = append(drop, g)
		}
	}
	m.mu.RUnlock()
	if len(drop) == 0 {
		return
	}
	next := m.nextHeld(nil, l)
	if err := m.saveHeld(next); err != nil {
		m.log.Warn().Err(err).Msg("release held generations")
		return
	}
	m.mu.Lock()
	m.held = next
	m.mu.Unlock()
	m.log.Info().Any("released", drop).Msg("no ring is at these generations any more; their objects are let go")
	want := map[digest.Digest]catalog.Object{}
	if m.cfg.Serve {
		for _, o := range l.Catalog.Objects {
			if m.filter.Match(o.Path) {
				want[o.Digest] = o
			}
		}
	}
	m.collect(m.heldDigests(next, want))
}

// Version finds a version of a path by its consistent name
// (dir/<sha256>.name) in the live generation or a held one: the object,
// under that name, and the live generation (0 when none is live).
func (m *Mirror) Version(key string) (catalog.Object, uint64, bool) {
	p, d, ok := catalog.SplitConsistent(key)
	if !ok {
		return catalog.Object{}, 0, false
	}
	l := m.Live()
	if l == nil {
		return catalog.Object{}, 0, false
	}
	if o, ok := l.Catalog.Lookup(p); ok && o.Digest == d {
		o.Path = key
		return o, l.Catalog.Generation, true
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, c := range m.held {
		if o, ok := c.Lookup(p); ok && o.Digest == d {
			o.Path = key
			return o, l.Catalog.Generation, true
		}
	}
	return catalog.Object{}, 0, false
}

// OpenVersion serves a consistent name of the live or a held generation
// from disk, when the mirror serves what it mirrors and the path is
// selected; missing, it is fetched first, up by that name (a relay that
// joined after the generation was replaced). ok is false for a key that
// is no such version, for the caller to get it elsewhere.
func (m *Mirror) OpenVersion(ctx context.Context, key string) (obj *object.Object, ok bool, err error) {
	o, gen, ok := m.Version(key)
	if !ok || !m.cfg.Serve {
		return nil, false, nil
	}
	if p, _, _ := catalog.SplitConsistent(key); !m.filter.Match(p) {
		return nil, false, nil
	}
	if !m.store.Has(o.Digest) {
		if _, err := m.obtain(ctx, o, &syncState{generation: gen}, false); err != nil {
			return nil, true, fmt.Errorf("mirror: %s: %w", key, err)
		}
	}
	obj, err = m.blobObject(key, o.Digest, m.Live().Catalog.Published)
	return obj, true, err
}
