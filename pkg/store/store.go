package store

// The Store type, its configuration, entries and sentinel errors. Which
// file holds what: see doc.go.

import (
	"container/list"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"

	"github.com/relayd/relayd/pkg/admindoc"
	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/digest"
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
type Stats = admindoc.StoreStats

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

// blobPath is where the blob with digest d lives: blobs/ab/abcdef….
func (s *Store) blobPath(d digest.Digest) string {
	h := d.Hex()
	return filepath.Join(s.blobDir, h[:2], h)
}

// mapNoSpace turns ENOSPC into ErrNoSpace, keeping the original error.
func mapNoSpace(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}
