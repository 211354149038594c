package store

import (
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"sync"

	"github.com/relayd/relayd/internal/atomicfile"
	"github.com/relayd/relayd/pkg/digest"
)

// Writer writes one new object. Its bytes go to a temp file that other
// goroutines may read with File().ReadAt while it grows (stream-through);
// Commit makes it a blob and points a key at it, Abort throws it away.
// Write, Commit and Abort are for one goroutine; Close may come from any.
type Writer struct {
	s        *Store
	f        *os.File
	path     string
	h        hash.Hash
	n        int64
	size     int64 // expected size, -1 if unknown
	reserved int64
	finished bool // committed or aborted
	// resume names the partial file of a Resume writer, which keeps it
	// across restarts; "" for others.
	resume string
	once   sync.Once
}

// Create starts a new object of the given size (-1 if unknown). It reserves
// the room in the quota (evicting if needed) and, for a known size, on the
// file system too, so a full disk is found before any byte is sent.
func (s *Store) Create(size int64) (*Writer, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	res := size
	if size < 0 {
		res = s.cfg.ReserveChunk
		if s.cfg.MaxBytes > 0 && res > s.cfg.MaxBytes {
			res = s.cfg.MaxBytes
		}
	}
	if err := s.reserve(res); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(s.tmpDir, "fill-*")
	if err != nil {
		s.unreserve(res)
		return nil, fmt.Errorf("store: create temp: %w", mapNoSpace(err))
	}
	w := &Writer{s: s, f: f, path: f.Name(), h: digest.NewHash(), size: size, reserved: res}
	if size > 0 {
		if err := preallocate(f, size); err != nil {
			w.Abort()
			w.Close()
			return nil, fmt.Errorf("store: allocate %d bytes: %w", size, mapNoSpace(err))
		}
	}
	return w, nil
}

// File is the temp file, for concurrent ReadAt of the bytes written so far.
func (w *Writer) File() *os.File { return w.f }

// Written is the number of bytes written so far.
func (w *Writer) Written() int64 { return w.n }

// Write appends p, hashing it on the way.
func (w *Writer) Write(p []byte) (int, error) {
	if w.finished {
		// After Commit the file is a blob other keys may share; after
		// Abort the reservation is gone.
		return 0, errors.New("store: write after commit or abort")
	}
	if w.size >= 0 && w.n+int64(len(p)) > w.size {
		return 0, fmt.Errorf("store: write beyond declared size %d", w.size)
	}
	if need := w.n + int64(len(p)) - w.reserved; need > 0 {
		more := max(need, w.s.cfg.ReserveChunk)
		if m := w.s.cfg.MaxBytes; m > 0 {
			// Reserve no more than the quota: the object alone may fill it.
			if w.n+int64(len(p)) > m {
				return 0, ErrTooLarge
			}
			more = min(more, m-w.reserved)
		}
		if err := w.s.reserve(more); err != nil {
			return 0, err
		}
		w.reserved += more
	}
	n, err := w.f.WriteAt(p, w.n)
	w.h.Write(p[:n])
	w.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("store: write: %w", mapNoSpace(err))
	}
	return n, nil
}

// Commit checks the bytes, makes them durable and points key at them.
// expect, when not zero, is the digest the bytes must have; on a mismatch
// nothing is stored and ErrDigestMismatch is returned. The entry's Digest
// and Size are set from the bytes. Commit with the same digest as a stored
// blob keeps one copy.
func (w *Writer) Commit(key string, e Entry, expect digest.Digest) (Entry, error) {
	if w.finished {
		return e, errors.New("store: commit after commit or abort")
	}
	d, err := w.check(key, expect)
	if err != nil {
		return e, err
	}
	e.Digest, e.Size = d, w.n
	if err := w.f.Sync(); err != nil {
		w.Abort()
		return e, fmt.Errorf("store: sync %s: %w", key, mapNoSpace(err))
	}
	s := w.s
	s.wmu.Lock()
	defer s.wmu.Unlock()
	defer s.invalidate(key)
	final, exists, err := w.place(key, d)
	if err != nil {
		return e, err
	}
	now := s.clock.Now().UnixNano()
	val, err := encodeEntry(&e)
	if err != nil {
		w.Abort()
		return e, err
	}
	orphan, unpinned, err := s.commitTx(key, &e, val, now)
	if err != nil {
		if !exists {
			_ = os.Remove(final)
		}
		w.Abort()
		return e, fmt.Errorf("store: commit %s: index: %w", key, mapNoSpace(err))
	}
	w.finished = true
	_ = w.dropPin()
	s.addCommitted(d, final, w.n, now, w.reserved, e.Pinned)
	w.reserved = 0
	s.unpin(unpinned)
	if !orphan.IsZero() {
		s.forgetLocked(orphan)
	}
	return e, nil
}

// check makes sure the writer holds the whole object with the expected
// digest (when expect is not zero), and returns its digest. A writer that
// fails the check is aborted.
func (w *Writer) check(key string, expect digest.Digest) (digest.Digest, error) {
	if w.size >= 0 && w.n != w.size {
		w.Abort()
		return digest.Digest{}, fmt.Errorf("store: commit %s: got %d of %d bytes", key, w.n, w.size)
	}
	d := digest.FromHash(w.h)
	if !expect.IsZero() && d != expect {
		w.Abort()
		return d, fmt.Errorf("%w: %s: got %s, want %s", ErrDigestMismatch, key, d, expect)
	}
	return d, nil
}

// place makes the temp file the blob d, durably: renamed into blobs/ and
// its directory fsynced, or dropped when the blob is stored already (one
// copy per digest; exists is then true). A writer that cannot be placed
// is aborted. Called with s.wmu held.
func (w *Writer) place(key string, d digest.Digest) (final string, exists bool, err error) {
	s := w.s
	s.mu.Lock()
	_, exists = s.blobs[d]
	closed := s.closed
	s.mu.Unlock()
	if closed {
		w.Abort()
		return "", exists, ErrClosed
	}
	final = s.blobPath(d)
	if exists {
		// One copy per digest: the temp file is not needed.
		_ = os.Remove(w.path)
		return final, exists, nil
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o750); err != nil {
		w.Abort()
		return "", exists, fmt.Errorf("store: commit %s: %w", key, mapNoSpace(err))
	}
	if err := os.Rename(w.path, final); err != nil {
		w.Abort()
		return "", exists, fmt.Errorf("store: commit %s: %w", key, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(final)); err != nil {
		_ = os.Remove(final)
		w.Abort()
		return "", exists, fmt.Errorf("store: commit %s: %w", key, mapNoSpace(err))
	}
	return final, exists, nil
}

// Abort discards what was written. Readers holding the file keep their fd.
func (w *Writer) Abort() {
	if w.finished {
		return
	}
	w.finished = true
	_ = os.Remove(w.path)
	_ = w.dropPin()
	w.s.unreserve(w.reserved)
	w.reserved = 0
}

// Close closes the temp file; call it once nobody reads File any more. A
// writer neither committed nor aborted is aborted, except a resumable one,
// whose partial file stays for the next Resume.
func (w *Writer) Close() error {
	var err error
	w.once.Do(func() {
		if !w.finished {
			if w.resume != "" {
				w.finished = true
				w.s.unreserve(w.reserved)
				w.reserved = 0
			} else {
				w.Abort()
			}
		}
		err = w.f.Close()
		if w.resume != "" {
			w.s.endResume(w.resume)
		}
	})
	return err
}

// Digest is the digest of the bytes written so far.
func (w *Writer) Digest() digest.Digest {
	return digest.FromHash(w.h)
}
