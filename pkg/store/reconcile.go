package store

// The store's life: Open (clear leftover temp files, open the index,
// reconcile it with the blobs on disk, rebuild the LRU order), Run (flush
// access times) and Close.

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/digest"
)

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

// clearTemp removes the temp files of a previous run except resumable
// partial downloads.
func (s *Store) clearTemp() error {
	if err := os.MkdirAll(s.tmpDir, 0o750); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	ents, err := os.ReadDir(s.tmpDir)
	if err != nil {
		return fmt.Errorf("store: clear temp dir: %w", err)
	}
	kept := map[string]bool{}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), resumePrefix) && e.Type().IsRegular() {
			kept[e.Name()] = true
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.tmpDir, e.Name())); err != nil {
			return fmt.Errorf("store: clear temp dir: %w", err)
		}
	}
	for name := range kept {
		// A pin without its partial file describes nothing.
		if part, ok := strings.CutSuffix(name, pinSuffix); ok && !kept[part] {
			_ = os.Remove(filepath.Join(s.tmpDir, name))
		}
	}
	return nil
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

func sortByAtime(b []*blob) {
	sort.Slice(b, func(i, j int) bool { return b[i].atime < b[j].atime })
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
