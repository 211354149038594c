package store

// Reading blobs: a Reader per OpenBlob, sharing one descriptor per hot blob
// (the fd cache), and the reader counts that keep a blob from eviction.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/object"
)

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
	body object.FileBody // Body's: one allocation less per hit
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

// Body is r as an object body; closing the body releases r. Call it
// once: the body lives in r.
func (r *Reader) Body(sendfile bool) *object.FileBody {
	r.body = object.FileBody{R: r, Path: r.Path, N: r.Size, Sendfile: sendfile, OnClose: func() { _ = r.Close() }}
	return &r.body
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
