package store

// The bbolt index: its buckets and encodings, and every transaction on
// entries, refs, pins and small metadata. The in-memory side of a change
// (blob records, pins, the entry cache) is updated by the caller after the
// transaction commits.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/relayd/relayd/pkg/digest"
)

var (
	bucketPaths = []byte("paths") // key → Entry (JSON)
	bucketBlobs = []byte("blobs") // digest → size(8) atime(8)
	bucketRefs  = []byte("refs")  // digest ‖ key → nil: which keys use a blob
	bucketPins  = []byte("pins")  // key → digest: pinned keys
	bucketMeta  = []byte("meta")  // name → value: small state of other packages
)

// Get returns the entry for key, or ErrNotFound. The Header map of the
// returned entry is shared: callers must not modify it.
func (s *Store) Get(key string) (Entry, error) {
	if e, ok := s.cachedEntry(key); ok {
		return e, nil
	}
	gen := s.entryGen()
	var e Entry
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketPaths).Get([]byte(key))
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &e)
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return e, err
		}
		return e, fmt.Errorf("store: get %s: %w", key, err)
	}
	s.cacheEntry(key, e, gen)
	return e, nil
}

// Update changes the entry for key in place (e.g. new freshness after a
// revalidation) without touching its blob. fn must not change Digest or
// Size. ErrNotFound if the key has no entry.
func (s *Store) Update(key string, fn func(*Entry)) error {
	defer s.invalidate(key)
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPaths)
		v := b.Get([]byte(key))
		if v == nil {
			return ErrNotFound
		}
		var e Entry
		if err := json.Unmarshal(v, &e); err != nil {
			return err
		}
		d, size := e.Digest, e.Size
		fn(&e)
		e.Digest, e.Size = d, size
		nv, err := encodeEntry(&e)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), nv)
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("store: update %s: %w", key, mapNoSpace(err))
	}
	return err
}

// Delete removes the entry for key. Its blob goes too when no other key
// uses it; a reader that has it open keeps reading its bytes.
func (s *Store) Delete(key string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	defer s.invalidate(key)
	var orphan, unpinned digest.Digest
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		orphan, unpinned, err = unlinkKeyTx(tx, key)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: delete %s: %w", key, err)
	}
	s.unpin(unpinned)
	if !orphan.IsZero() {
		s.forgetLocked(orphan)
	}
	return nil
}

// PinBlobs points prefix+hex at each of the stored blobs ds as a pinned
// key, so none of them is evicted. Blobs not stored are skipped; keys that
// exist already are left as they are. One transaction for all.
func (s *Store) PinBlobs(prefix string, ds []digest.Digest) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	type pin struct {
		d    digest.Digest
		size int64
	}
	var todo []pin
	s.mu.Lock()
	for _, d := range ds {
		if b, ok := s.blobs[d]; ok {
			todo = append(todo, pin{d, b.size})
		}
	}
	s.mu.Unlock()
	now := s.clock.Now()
	var added []digest.Digest
	err := s.db.Update(func(tx *bolt.Tx) error {
		paths := tx.Bucket(bucketPaths)
		for _, p := range todo {
			key := prefix + p.d.Hex()
			if paths.Get([]byte(key)) != nil {
				continue
			}
			val, err := encodeEntry(&Entry{Digest: p.d, Size: p.size, Stored: now, Pinned: true})
			if err != nil {
				return err
			}
			if err := paths.Put([]byte(key), val); err != nil {
				return err
			}
			if err := tx.Bucket(bucketRefs).Put(refKey(p.d, key), nil); err != nil {
				return err
			}
			if err := tx.Bucket(bucketPins).Put([]byte(key), p.d[:]); err != nil {
				return err
			}
			added = append(added, p.d)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: pin: %w", mapNoSpace(err))
	}
	s.mu.Lock()
	for _, d := range added {
		if b, ok := s.blobs[d]; ok {
			b.pins++
		}
	}
	s.mu.Unlock()
	return nil
}

// List calls fn for every key with the prefix, in key order, until fn
// returns false.
func (s *Store) List(prefix string, fn func(key string, e Entry) bool) error {
	return s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketPaths).Cursor()
		for k, v := c.Seek([]byte(prefix)); k != nil && strings.HasPrefix(string(k), prefix); k, v = c.Next() {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("store: list: %s: %w", k, err)
			}
			if !fn(string(k), e) {
				return nil
			}
		}
		return nil
	})
}

// GetMeta returns the value stored under name, nil if none.
func (s *Store) GetMeta(name string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get([]byte(name)); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	return out, err
}

// PutMeta durably stores value under name.
func (s *Store) PutMeta(name string, value []byte) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put([]byte(name), value)
	})
	if err != nil {
		return fmt.Errorf("store: put %s: %w", name, mapNoSpace(err))
	}
	return nil
}

// flushAccess writes the access times collected since the last flush.
func (s *Store) flushAccess() error {
	s.mu.Lock()
	if len(s.dirty) == 0 || s.closed {
		s.mu.Unlock()
		return nil
	}
	dirty := s.dirty
	s.dirty = make(map[digest.Digest]int64)
	s.mu.Unlock()
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBlobs)
		for d, at := range dirty {
			v := b.Get(d[:])
			if v == nil {
				continue // evicted meanwhile
			}
			size, _ := decodeBlob(v)
			if err := b.Put(d[:], encodeBlob(size, at)); err != nil {
				return err
			}
		}
		return nil
	})
}

// commitTx points key at the blob of e (accessed at now) with the entry
// encoded as val, in one transaction, replacing key's previous entry. It
// returns what unlinking the previous entry left (unlinkKeyTx); orphan is
// zero when that was the same blob.
func (s *Store) commitTx(key string, e *Entry, val []byte, now int64) (orphan, unpinned digest.Digest, err error) {
	d := e.Digest
	err = s.db.Update(func(tx *bolt.Tx) error {
		var err error
		if orphan, unpinned, err = unlinkKeyTx(tx, key); err != nil {
			return err
		}
		if e.Pinned {
			if err := tx.Bucket(bucketPins).Put([]byte(key), d[:]); err != nil {
				return err
			}
		}
		if orphan == d {
			orphan = digest.Digest{} // replaced by the same bytes
		}
		if err := tx.Bucket(bucketBlobs).Put(d[:], encodeBlob(e.Size, now)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketRefs).Put(refKey(d, key), nil); err != nil {
			return err
		}
		return tx.Bucket(bucketPaths).Put([]byte(key), val)
	})
	return orphan, unpinned, err
}

// dropBlobTx removes a blob's record and every key that points to it,
// and returns those keys.
func dropBlobTx(tx *bolt.Tx, d digest.Digest) ([]string, error) {
	refs := tx.Bucket(bucketRefs)
	paths := tx.Bucket(bucketPaths)
	var refKeys [][]byte
	c := refs.Cursor()
	for k, _ := c.Seek(d[:]); k != nil && len(k) >= digest.Size && string(k[:digest.Size]) == string(d[:]); k, _ = c.Next() {
		refKeys = append(refKeys, append([]byte(nil), k...))
	}
	var dropped []string
	for _, k := range refKeys {
		if err := refs.Delete(k); err != nil {
			return nil, err
		}
		key := k[digest.Size:]
		// Only drop the path if it still points to this blob.
		if v := paths.Get(key); v != nil {
			var e Entry
			if json.Unmarshal(v, &e) == nil && e.Digest == d {
				if err := paths.Delete(key); err != nil {
					return nil, err
				}
				if err := tx.Bucket(bucketPins).Delete(key); err != nil {
					return nil, err
				}
				dropped = append(dropped, string(key))
			}
		}
	}
	return dropped, tx.Bucket(bucketBlobs).Delete(d[:])
}

// unlinkKeyTx removes key's entry, ref and pin. It returns the blob's
// digest as orphan if no other key uses it any more (its record is removed
// too), and as unpinned if the key was pinned.
func unlinkKeyTx(tx *bolt.Tx, key string) (orphan, unpinned digest.Digest, err error) {
	paths := tx.Bucket(bucketPaths)
	v := paths.Get([]byte(key))
	if v == nil {
		return orphan, unpinned, nil
	}
	var e Entry
	if err := json.Unmarshal(v, &e); err != nil {
		return orphan, unpinned, err
	}
	if err := paths.Delete([]byte(key)); err != nil {
		return orphan, unpinned, err
	}
	if e.Pinned {
		if err := tx.Bucket(bucketPins).Delete([]byte(key)); err != nil {
			return orphan, unpinned, err
		}
		unpinned = e.Digest
	}
	refs := tx.Bucket(bucketRefs)
	if err := refs.Delete(refKey(e.Digest, key)); err != nil {
		return orphan, unpinned, err
	}
	k, _ := refs.Cursor().Seek(e.Digest[:])
	if k != nil && len(k) >= digest.Size && string(k[:digest.Size]) == string(e.Digest[:]) {
		return orphan, unpinned, nil // still used by another key
	}
	return e.Digest, unpinned, tx.Bucket(bucketBlobs).Delete(e.Digest[:])
}

func refKey(d digest.Digest, key string) []byte {
	k := make([]byte, 0, digest.Size+len(key))
	k = append(k, d[:]...)
	return append(k, key...)
}

func encodeBlob(size, atime int64) []byte {
	v := make([]byte, 16)
	binary.BigEndian.PutUint64(v[:8], uint64(size))
	binary.BigEndian.PutUint64(v[8:], uint64(atime))
	return v
}

func decodeBlob(v []byte) (size, atime int64) {
	if len(v) < 16 {
		return -1, 0
	}
	return int64(binary.BigEndian.Uint64(v[:8])), int64(binary.BigEndian.Uint64(v[8:]))
}

func encodeEntry(e *Entry) ([]byte, error) {
	v, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("store: encode entry: %w", err)
	}
	return v, nil
}
