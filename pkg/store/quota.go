package store

// The blobs in memory and the quota: sizes and reservations, LRU eviction
// of blobs nobody reads, writes or pins, and forgetting a removed blob.

import (
	"errors"
	"os"

	bolt "go.etcd.io/bbolt"

	"github.com/relayd/relayd/pkg/digest"
)

// Stats returns the current sizes.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Blobs: len(s.blobs), Bytes: s.used, Reserved: s.reserved, MaxBytes: s.cfg.MaxBytes, Evictions: s.evictions}
}

// Has reports whether the blob d is stored.
func (s *Store) Has(d digest.Digest) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.blobs[d]
	return ok
}

// reserve makes room for n more bytes within the quota, evicting least
// recently used blobs that are not in use.
func (s *Store) reserve(n int64) error {
	if s.cfg.MaxBytes <= 0 {
		s.mu.Lock()
		s.reserved += n
		s.mu.Unlock()
		return nil
	}
	if n > s.cfg.MaxBytes {
		return ErrTooLarge
	}
	s.mu.Lock()
	if s.used+s.reserved+s.evicting+n <= s.cfg.MaxBytes {
		s.reserved += n
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	// Making room removes blobs, so it holds wmu throughout: a commit of
	// the same bytes cannot slip in between taking a victim out of memory
	// and dropping its record and file. Until the files are gone their
	// bytes stay counted (evicting), so that nobody reserves room that is
	// still taken on disk.
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	var victims []*blob
	var freed int64
	for s.used+s.reserved+s.evicting+n > s.cfg.MaxBytes {
		v := s.oldestIdle()
		if v == nil {
			// Put the victims back, oldest last: without enough room
			// the reservation fails as a whole and evicts nothing.
			for i := len(victims) - 1; i >= 0; i-- {
				b := victims[i]
				b.elem = s.lru.PushBack(b)
				s.blobs[b.d] = b
				s.used += b.size
			}
			s.mu.Unlock()
			return ErrFull
		}
		s.lru.Remove(v.elem)
		delete(s.blobs, v.d)
		delete(s.dirty, v.d)
		s.used -= v.size
		freed += v.size
		victims = append(victims, v)
	}
	s.reserved += n
	s.evicting += freed
	s.evictions += int64(len(victims))
	for _, v := range victims {
		v.gone = true
		s.closeFD(v)
	}
	s.mu.Unlock()
	if len(victims) > 0 {
		s.evictLocked(victims)
		s.mu.Lock()
		s.evicting -= freed
		s.mu.Unlock()
	}
	return nil
}

// oldestIdle returns the least recently used blob nobody reads, or nil.
// Called with s.mu held.
func (s *Store) oldestIdle() *blob {
	for e := s.lru.Back(); e != nil; e = e.Prev() {
		if b := e.Value.(*blob); b.readers == 0 && b.pins == 0 {
			return b
		}
	}
	return nil
}

// evictLocked removes blobs already taken out of memory from the index and
// disk. The index goes first: a crash in between leaves files without
// records, which Open removes. Called with s.wmu held.
func (s *Store) evictLocked(victims []*blob) {
	var dropped []string // the keys that pointed to the victims
	defer func() { s.invalidate(dropped...) }()
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, v := range victims {
			keys, err := dropBlobTx(tx, v.d)
			if err != nil {
				return err
			}
			dropped = append(dropped, keys...)
		}
		return nil
	})
	if err != nil {
		s.log.Error().Err(err).Msg("evict: update index")
	}
	for _, v := range victims {
		if err := os.Remove(v.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn().Err(err).Str("digest", v.d.String()).Msg("evict: remove blob")
		}
		s.log.Debug().Str("digest", v.d.String()).Int64("size", v.size).Msg("evicted")
	}
}

func (s *Store) unreserve(n int64) {
	s.mu.Lock()
	s.reserved -= n
	s.mu.Unlock()
}

// addCommitted records a blob just committed (size bytes, accessed at now)
// as the most recently used, and releases the reservation res of its
// writer; a blob stored already is only touched. pinned counts the
// committed key's pin.
func (s *Store) addCommitted(d digest.Digest, path string, size, now, res int64, pinned bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reserved -= res
	b, ok := s.blobs[d]
	if ok {
		b.atime = now
		s.lru.MoveToFront(b.elem)
	} else {
		b = &blob{d: d, path: path, size: size, atime: now}
		b.elem = s.lru.PushFront(b)
		s.blobs[d] = b
		s.used += size
	}
	if pinned {
		b.pins++
	}
}

// forgetLocked removes the file of a blob no key uses any more and drops
// its in-memory record. The file goes first: its bytes stay counted until
// they are off the disk, so nobody reserves room still taken. Called with
// s.wmu held.
func (s *Store) forgetLocked(d digest.Digest) {
	if err := os.Remove(s.blobPath(d)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn().Err(err).Str("digest", d.String()).Msg("remove blob")
	}
	s.mu.Lock()
	if b, ok := s.blobs[d]; ok {
		s.lru.Remove(b.elem)
		delete(s.blobs, d)
		delete(s.dirty, d)
		s.used -= b.size
		b.gone = true
		s.closeFD(b)
	}
	s.mu.Unlock()
}

// unpin drops one pin of the blob d (zero: none).
func (s *Store) unpin(d digest.Digest) {
	if d.IsZero() {
		return
	}
	s.mu.Lock()
	if b, ok := s.blobs[d]; ok && b.pins > 0 {
		b.pins--
	}
	s.mu.Unlock()
}
