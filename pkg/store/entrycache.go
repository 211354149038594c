package store

// The entry cache: decoded index entries of recently read keys, kept in
// memory so that a hit does not pay for a bbolt transaction and a JSON
// decode. Every change of a key's entry goes through invalidate.

// maxCachedEntries bounds the entry cache (~200 bytes each).
const maxCachedEntries = 16384

func (s *Store) cachedEntry(key string) (Entry, bool) {
	s.emu.RLock()
	e, ok := s.entries[key]
	s.emu.RUnlock()
	return e, ok
}

// cacheEntry caches e unless an invalidation happened since gen was read
// (the entry read may be older than that change).
func (s *Store) cacheEntry(key string, e Entry, gen uint64) {
	s.emu.Lock()
	defer s.emu.Unlock()
	if gen != s.egen {
		return
	}
	if len(s.entries) >= maxCachedEntries {
		for k := range s.entries { // drop an arbitrary one
			delete(s.entries, k)
			break
		}
	}
	s.entries[key] = e
}

func (s *Store) entryGen() uint64 {
	s.emu.RLock()
	defer s.emu.RUnlock()
	return s.egen
}

// invalidate forgets the cached entries of keys, and makes the entries of
// lookups in progress uncacheable (they may have read the index before
// the change).
func (s *Store) invalidate(keys ...string) {
	s.emu.Lock()
	s.egen++
	for _, k := range keys {
		delete(s.entries, k)
	}
	s.emu.Unlock()
}
