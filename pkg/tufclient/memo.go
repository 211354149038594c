// The memo: many clients in one process (relayd loadgen's simulated
// agents) verifying the same bytes verify them once.
package tufclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// MaxMemoEntries bounds a Memo: the transitions it remembers (a few per
// generation in practice). When full it forgets them all.
const MaxMemoEntries = 256

// Memo lets clients that trust the same root share the verification of
// byte-identical metadata. A client with Options.Memo still makes every
// request an update makes (its own timestamp, every file it lacks, in
// the same order); when its trusted state and every byte it fetched are
// those of an update another client of the memo verified, it takes that
// update's verified result instead of verifying the same bytes again.
// Expiry is judged again on the client's own clock. An update that fails,
// or that trusts a new root, is not remembered.
//
// It is for simulators that run many clients in one process (relayd
// loadgen): a real agent has one client and no use for it.
type Memo struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]*memoEntry
	sets    map[*trustedSet][sha256.Size]byte
	pending map[[sha256.Size]byte]chan struct{} // keys being verified in full
	roots   map[[sha256.Size]byte]*metadata.Metadata[metadata.RootType]
	hits    int64
	misses  int64
}

// NewMemo returns an empty memo.
func NewMemo() *Memo {
	return &Memo{entries: map[[sha256.Size]byte]*memoEntry{}, sets: map[*trustedSet][sha256.Size]byte{},
		pending: map[[sha256.Size]byte]chan struct{}{}, roots: map[[sha256.Size]byte]*metadata.Metadata[metadata.RootType]{}}
}

// MemoStats are a memo's counts: updates taken from it, and updates
// verified in full.
type MemoStats struct {
	Hits, Misses int64
}

// Stats returns the memo's counts.
func (m *Memo) Stats() MemoStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return MemoStats{Hits: m.hits, Misses: m.misses}
}

// memoEntry is one verified update: from the trusted state of its key
// and its timestamp, the files fetched after the timestamp, in order,
// and what was trusted after them.
type memoEntry struct {
	steps              []memoStep
	set                *trustedSet
	tsFloor, snapFloor []byte
}

// memoStep is one fetch: the served name and what it gave (the sha256 of
// the bytes, or a not-found).
type memoStep struct {
	name     string
	max      int64
	sum      [sha256.Size]byte
	notFound bool
}

func (s *memoStep) matches(r fetched) bool {
	if r.err != nil {
		return s.notFound && errors.Is(r.err, ErrNotFound)
	}
	return !s.notFound && sha256.Sum256(r.b) == s.sum
}

// fetched is one answer of a Fetcher.
type fetched struct {
	b   []byte
	err error
}

// recorder is the Fetcher of a memoized update: it fetches from f,
// records every fetch, and answers a name it already fetched in this
// update from what it got (a replay that fell through does not fetch
// anything twice).
type recorder struct {
	f     Fetcher
	got   map[string]fetched
	steps []memoStep
}

func (r *recorder) FetchMeta(ctx context.Context, name string, max int64) ([]byte, error) {
	g, ok := r.got[name]
	if !ok {
		g.b, g.err = r.f.FetchMeta(ctx, name, max)
		r.got[name] = g
	}
	b, err := g.b, g.err
	st := memoStep{name: name, max: max, notFound: errors.Is(err, ErrNotFound)}
	if err == nil {
		st.sum = sha256.Sum256(b)
	}
	r.steps = append(r.steps, st)
	return b, err
}

// trustedRoot is the root New verified from raw for another client of
// the memo (without Dir), nil if none did.
func (m *Memo) trustedRoot(raw []byte) *metadata.Metadata[metadata.RootType] {
	k := sha256.Sum256(raw)
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.roots[k]
}

// keepRoot remembers the root New verified from raw.
func (m *Memo) keepRoot(raw []byte, root *metadata.Metadata[metadata.RootType]) {
	k := sha256.Sum256(raw)
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.roots) >= MaxMemoEntries {
		clear(m.roots)
	}
	m.roots[k] = root
}

// setID identifies a trusted set by the bytes of its files.
func (m *Memo) setID(s *trustedSet) [sha256.Size]byte {
	if s == nil {
		return [sha256.Size]byte{}
	}
	m.mu.Lock()
	id, ok := m.sets[s]
	m.mu.Unlock()
	if ok {
		return id
	}
	h := sha256.New()
	files := s.files()
	names := slices.Sorted(maps.Keys(files))
	for _, name := range names {
		sum := sha256.Sum256(files[name])
		h.Write([]byte(name))
		h.Write(sum[:])
	}
	h.Sum(id[:0])
	m.mu.Lock()
	if len(m.sets) >= MaxMemoEntries*4 {
		clear(m.sets)
	}
	m.sets[s] = id
	m.mu.Unlock()
	return id
}

// key is the trusted state of c (root, floors, current set) with the
// timestamp it fetched.
func (m *Memo) key(c *Client, ts []byte) [sha256.Size]byte {
	h := sha256.New()
	for _, b := range [][]byte{c.rootRaw, c.tsFloor, c.snapFloor, ts} {
		sum := sha256.Sum256(b)
		h.Write(sum[:])
	}
	id := m.setID(c.set)
	h.Write(id[:])
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// claim returns the entry of k; or, while another client verifies k in
// full, a channel closed when it is done; or neither, and then the
// caller verifies k and must call done.
func (m *Memo) claim(k [sha256.Size]byte) (*memoEntry, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.entries[k]; e != nil {
		return e, nil
	}
	if ch := m.pending[k]; ch != nil {
		return nil, ch
	}
	m.pending[k] = make(chan struct{})
	return nil, nil
}

// done ends the verification of k claimed by the caller; e is its result
// (nil when it failed: the next client verifies in full).
func (m *Memo) done(k [sha256.Size]byte, e *memoEntry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e != nil {
		if len(m.entries) >= MaxMemoEntries {
			clear(m.entries)
		}
		m.entries[k] = e
	}
	close(m.pending[k])
	delete(m.pending, k)
}

func (m *Memo) count(hit bool) {
	m.mu.Lock()
	if hit {
		m.hits++
	} else {
		m.misses++
	}
	m.mu.Unlock()
}

// memoUpdate is Update with a memo; c.mu is held.
func (c *Client) memoUpdate(ctx context.Context, f Fetcher) (*State, error) {
	m := c.opt.Memo
	rec := &recorder{f: f, got: map[string]fetched{}}
	ts, err := rec.FetchMeta(ctx, "timestamp.json", TimestampMaxBytes)
	if err != nil || int64(len(ts)) > TimestampMaxBytes || (c.complete() && bytes.Equal(ts, c.set.tsRaw)) {
		return c.update(ctx, rec) // failed, too large or unchanged: nothing to share
	}
	k := m.key(c, ts)
	e, wait := m.claim(k)
	for wait != nil { // another agent is verifying the same bytes: its requests are its own, the wait is ours
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, fmt.Errorf("tufclient: %w", ctx.Err())
		}
		e, wait = m.claim(k)
	}
	if e != nil {
		replayed := true
		for i := range e.steps {
			s := &e.steps[i]
			if b, err := rec.FetchMeta(ctx, s.name, s.max); !s.matches(fetched{b, err}) {
				replayed = false
				break
			}
		}
		if replayed {
			m.count(true)
			return c.adopt(e, c.opt.Now())
		}
		// Other bytes than the memo's: verified in full, not remembered
		// (the entry stays the first verified).
		m.count(false)
		return c.update(ctx, rec)
	}
	m.count(false)
	var keep *memoEntry
	defer func() { m.done(k, keep) }()
	rootBefore := c.rootRaw
	rec.steps = rec.steps[:0] // the timestamp is in the key
	st, err := c.update(ctx, rec)
	if err == nil && bytes.Equal(rootBefore, c.rootRaw) && c.complete() {
		keep = &memoEntry{steps: rec.steps, set: c.set, tsFloor: c.tsFloor, snapFloor: c.snapFloor}
	}
	return st, err
}

// adopt makes e's verified result the client's, after checking its
// expiry on the client's clock.
func (c *Client) adopt(e *memoEntry, now time.Time) (*State, error) {
	st, err := c.commit(e.set, now)
	if err != nil {
		return nil, err
	}
	c.tsFloor, c.snapFloor = e.tsFloor, e.snapFloor
	return st, nil
}
