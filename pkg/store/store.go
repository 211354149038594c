package store

import (
	"container/list"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/object"
)

// Sentinel errors; callers test them with errors.Is.
var (
	// ErrNotFound: no entry for the key, or its blob is gone.
	ErrNotFound = errors.New("store: not found")
	// ErrFull: the quota cannot make room because every blob is in use.
	ErrFull = errors.New("store: quota full, every object in use")
	// ErrTooLarge: the object is larger than the whole quota.
	ErrTooLarge = errors.New("store: object larger than quota")
	// ErrNoSpace: the file system is out of space (ENOSPC).
	ErrNoSpace = errors.New("store: no space left on device")
	// ErrDigestMismatch: the bytes written do not have the expected digest.
	ErrDigestMismatch = errors.New("store: digest mismatch")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("store: closed")
	// ErrBusy: another writer has the partial file of that name open
	// (Resume); two writers of one file would corrupt it.
	ErrBusy = errors.New("store: partial file in use by another download")
)

// Config says where and how much the store keeps.
type Config struct {
	// Dir holds index.db, blobs/ and tmp/. Created if missing. Required.
	Dir string
	// MaxBytes caps the bytes of all blobs plus reservations of writers in
	// progress. 0 means no cap. Default 0.
	MaxBytes int64
	// AccessFlushInterval is how often access times are written to the
	// index (they are kept in memory between flushes, so a hit costs no
	// disk write). Default 30s.
	AccessFlushInterval time.Duration
	// ReserveChunk is how much a writer of unknown size reserves at a time.
	// Default 4 MiB.
	ReserveChunk int64
}

// DefaultConfig returns the defaults for dir.
func DefaultConfig(dir string) Config {
	return Config{Dir: dir, AccessFlushInterval: 30 * time.Second, ReserveChunk: 4 << 20}
}

// Entry is what the index holds for one key.
type Entry struct {
	// Digest and Size identify the blob holding the object's bytes.
	Digest digest.Digest `json:"d"`
	Size   int64         `json:"s"`
	// Requested and Stored are when the upstream request was sent and its
	// response received (RFC 9111's request_time and response_time).
	Requested time.Time `json:"q"`
	Stored    time.Time `json:"t"`
	// Header holds the response headers the caller keeps (canonical names).
	Header map[string]string `json:"h,omitempty"`
	// Pinned keys keep their blob from eviction (mirrored generations,
	// objects an operator pinned).
	Pinned bool `json:"p,omitempty"`
}

// Stats is a snapshot of the store's size.
type Stats struct {
	Blobs     int   `json:"blobs"`
	Bytes     int64 `json:"bytes"`
	Reserved  int64 `json:"reserved"`
	MaxBytes  int64 `json:"max_bytes"`
	Evictions int64 `json:"evictions"`
}

var (
	bucketPaths = []byte("paths") // key → Entry (JSON)
	bucketBlobs = []byte("blobs") // digest → size(8) atime(8)
	bucketRefs  = []byte("refs")  // digest ‖ key → nil: which keys use a blob
	bucketPins  = []byte("pins")  // key → digest: pinned keys
	bucketMeta  = []byte("meta")  // name → value: small state of other packages
)

// blob is the in-memory state of one stored blob.
type blob struct {
	d       digest.Digest
	path    string // the file, blobs/ab/abcdef… (kept: a hit builds no path)
	size    int64
	atime   int64 // unix nanoseconds
	readers int   // open Readers; a blob with readers is never evicted
	pins    int   // pinned keys using it; a pinned blob is never evicted
	// f is an open descriptor shared by its Readers (they read with
	// pread), kept open while the blob is hot so a hit costs no open(2).
	f    *os.File
	gone bool // removed from the store: close f once the last reader leaves
	elem *list.Element
}

// Store is a blob store with a bbolt index. It is safe for concurrent use.
type Store struct {
	cfg   Config
	log   zerolog.Logger
	clock clock.Clock
	db    *bolt.DB

	blobDir, tmpDir string

	// wmu serialises the operations that add or remove blob files and
	// their records (commit, evict, delete), so a blob being evicted and
	// the same blob being committed again cannot interleave.
	wmu sync.Mutex

	mu        sync.Mutex
	blobs     map[digest.Digest]*blob
	lru       *list.List // of *blob, front = most recently used
	used      int64      // bytes of committed blobs
	reserved  int64      // bytes reserved by writers
	evicting  int64      // bytes of blobs being evicted, still on disk
	dirty     map[digest.Digest]int64
	evictions int64
	closed    bool
	openFDs   int             // shared blob descriptors open
	resuming  map[string]bool // names of partial files a Writer has open (Resume)

	// entries caches decoded index entries of recently read keys, so a
	// hit does not pay for a bbolt transaction and a JSON decode. Every
	// change of a key's entry goes through invalidate.
	emu     sync.RWMutex
	entries map[string]Entry
	egen    uint64 // bumped by every invalidate
}

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

// Open opens (or creates) the store in cfg.Dir and reconciles the index
// with the blobs on disk.
func Open(cfg Config, log zerolog.Logger, clk clock.Clock) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("store: no directory configured")
	}
	def := DefaultConfig(cfg.Dir)
	if cfg.AccessFlushInterval <= 0 {
		cfg.AccessFlushInterval = def.AccessFlushInterval
	}
	if cfg.ReserveChunk <= 0 {
		cfg.ReserveChunk = def.ReserveChunk
	}
	s := &Store{
		cfg: cfg, log: log.With().Str("component", "store").Logger(), clock: clk,
		blobDir: filepath.Join(cfg.Dir, "blobs"), tmpDir: filepath.Join(cfg.Dir, "tmp"),
		blobs: make(map[digest.Digest]*blob), lru: list.New(), dirty: make(map[digest.Digest]int64),
		entries: make(map[string]Entry), resuming: make(map[string]bool),
	}
	for _, d := range []string{cfg.Dir, s.blobDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	if err := s.clearTemp(); err != nil {
		return nil, err
	}
	db, err := bolt.Open(filepath.Join(cfg.Dir, "index.db"), 0o640, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("store: open index %s: %w", filepath.Join(cfg.Dir, "index.db"), err)
	}
	s.db = db
	if err := s.reconcile(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// blobPath is where the blob with digest d lives: blobs/ab/abcdef….
func (s *Store) blobPath(d digest.Digest) string {
	h := d.Hex()
	return filepath.Join(s.blobDir, h[:2], h)
}

// reconcile loads the blob records into memory and makes index and disk
// agree (see the package comment).
func (s *Store) reconcile() error {
	onDisk := make(map[digest.Digest]int64)
	err := filepath.WalkDir(s.blobDir, func(p string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		d, perr := digest.ParseHex(de.Name())
		if perr != nil {
			s.log.Warn().Str("file", p).Msg("removing unknown file in blob directory")
			return os.Remove(p)
		}
		info, ierr := de.Info()
		if ierr != nil {
			return ierr
		}
		onDisk[d] = info.Size()
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: scan blobs: %w", err)
	}
	var dropped []digest.Digest
	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketPaths, bucketBlobs, bucketRefs, bucketPins, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		c := tx.Bucket(bucketBlobs).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var d digest.Digest
			copy(d[:], k)
			size, atime := decodeBlob(v)
			if n, ok := onDisk[d]; !ok || n != size {
				dropped = append(dropped, d)
				continue
			}
			delete(onDisk, d)
			s.blobs[d] = &blob{d: d, path: s.blobPath(d), size: size, atime: atime}
		}
		for _, d := range dropped {
			if _, err := dropBlobTx(tx, d); err != nil {
				return err
			}
		}
		pc := tx.Bucket(bucketPins).Cursor()
		for k, v := pc.First(); k != nil; k, v = pc.Next() {
			var d digest.Digest
			copy(d[:], v)
			if b, ok := s.blobs[d]; ok {
				b.pins++
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: reconcile index: %w", err)
	}
	for _, d := range dropped {
		s.log.Warn().Str("digest", d.String()).Msg("index named a blob that is missing or has the wrong size; dropped")
		_ = os.Remove(s.blobPath(d))
	}
	for d := range onDisk {
		s.log.Info().Str("digest", d.String()).Msg("removing blob not in the index (left by a crash)")
		_ = os.Remove(s.blobPath(d))
	}
	// Rebuild the LRU order from the persisted access times.
	order := make([]*blob, 0, len(s.blobs))
	for _, b := range s.blobs {
		order = append(order, b)
		s.used += b.size
	}
	sortByAtime(order)
	for _, b := range order {
		b.elem = s.lru.PushFront(b)
	}
	s.log.Debug().Int("blobs", len(s.blobs)).Int64("bytes", s.used).Msg("store opened")
	return nil
}

// Run writes batched access times every AccessFlushInterval until ctx ends.
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.AccessFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := s.flushAccess(); err != nil {
				s.log.Warn().Err(err).Msg("flush access times")
			}
		}
	}
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

// Close flushes access times and closes the index. Readers and writers
// still open keep working on their files but can no longer commit.
func (s *Store) Close() error {
	ferr := s.flushAccess()
	s.mu.Lock()
	s.closed = true
	for _, b := range s.blobs {
		if b.f != nil && b.readers == 0 {
			_ = b.f.Close()
			b.f = nil
			s.openFDs--
		}
	}
	s.mu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close index: %w", err)
	}
	return ferr
}

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

// maxCachedFDs bounds the blob descriptors kept open between hits (like
// nginx's open_file_cache); beyond it a descriptor closes with its last
// reader.
const maxCachedFDs = 1024

// Reader is an open blob. It stays readable until Close even if the blob is
// deleted meanwhile, and the blob is never evicted while a Reader is open.
// Its descriptor may be shared with other Readers: it reads with pread and
// never moves a file offset. It is safe for concurrent ReadAt.
type Reader struct {
	// Size is the blob's length.
	Size int64
	// Path is the blob file, for callers that want a private descriptor
	// (sendfile reads from the descriptor's offset).
	Path string
	f    *os.File
	off  int64 // for Read
	s    *Store
	b    *blob
	once sync.Once
}

// ReadAt reads len(p) bytes at off.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) { return r.f.ReadAt(p, off) }

// Read reads sequentially from the start (for io.Copy and tests).
func (r *Reader) Read(p []byte) (int, error) {
	if r.off >= r.Size {
		return 0, io.EOF
	}
	n, err := r.f.ReadAt(p[:min(int64(len(p)), r.Size-r.off)], r.off)
	r.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Body is r as an object body; closing the body releases r.
func (r *Reader) Body(sendfile bool) *object.FileBody {
	return &object.FileBody{R: r, Path: r.Path, N: r.Size, Sendfile: sendfile, OnClose: func() { _ = r.Close() }}
}

// Close releases the blob for eviction.
func (r *Reader) Close() error {
	r.once.Do(func() { r.s.release(r.b) })
	return nil
}

// OpenBlob opens the blob d for reading and records the access.
func (s *Store) OpenBlob(d digest.Digest) (*Reader, error) {
	s.mu.Lock()
	b, ok := s.blobs[d]
	if !ok {
		s.mu.Unlock()
		return nil, ErrNotFound
	}
	b.readers++
	now := s.clock.Now().UnixNano()
	b.atime = now
	s.dirty[d] = now
	s.lru.MoveToFront(b.elem)
	size, f := b.size, b.f
	s.mu.Unlock()
	if f == nil {
		nf, err := os.Open(b.path)
		if err != nil {
			s.release(b)
			if errors.Is(err, os.ErrNotExist) {
				return nil, ErrNotFound
			}
			return nil, fmt.Errorf("store: open blob %s: %w", d, err)
		}
		s.mu.Lock()
		if b.f == nil {
			b.f = nf
			s.openFDs++
		} else {
			defer nf.Close() // another reader was quicker
		}
		f = b.f
		s.mu.Unlock()
	}
	return &Reader{f: f, Size: size, Path: b.path, s: s, b: b}, nil
}

// closeFD closes b's shared descriptor when nobody reads it and it should
// not stay open. Called with s.mu held.
func (s *Store) closeFD(b *blob) {
	if b.f != nil && b.readers == 0 && (b.gone || s.openFDs > maxCachedFDs) {
		_ = b.f.Close()
		b.f = nil
		s.openFDs--
	}
}

// release undoes one OpenBlob of b. It takes the blob itself, not its
// digest: b may have been deleted and the same bytes stored again as a new
// blob, whose readers are not this one's.
func (s *Store) release(b *blob) {
	s.mu.Lock()
	if b.readers > 0 {
		b.readers--
	}
	s.closeFD(b)
	s.mu.Unlock()
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

// mapNoSpace turns ENOSPC into ErrNoSpace, keeping the original error.
func mapNoSpace(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

func encodeEntry(e *Entry) ([]byte, error) {
	v, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("store: encode entry: %w", err)
	}
	return v, nil
}
