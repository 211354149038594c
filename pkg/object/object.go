package object

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// Cache results, sent as X-Relay-Cache.
const (
	Hit         = "HIT"         // served from disk, fresh
	Revalidated = "REVALIDATED" // served from disk after the upstream confirmed it (304)
	Miss        = "MISS"        // fetched from upstream for this request (or joined that fetch)
	Peer        = "PEER"        // fetched from the owner relay in the group
	Stale       = "STALE"       // served from disk after the upstream failed
)

// Object is one response: what to send and where its bytes come from.
type Object struct {
	// Key is the canonical object key (cleanpath.Key).
	Key string
	// Status is the response status the upstream sent; 0 means 200. A
	// status other than 200 is sent as it is, with its body, and no Range
	// or conditional request is evaluated against it.
	Status int
	// Size is the length in bytes, -1 when unknown (a fill whose upstream
	// sent no Content-Length): such a body is sent whole, Range ignored.
	Size int64
	// ETag is the quoted strong entity tag, "" when unknown.
	ETag string
	// LastModified is zero when unknown.
	LastModified time.Time
	// Header holds further response headers (Content-Type,
	// Cache-Control, Expires, …) in canonical form. It may be shared
	// between responses: read it, never change it.
	Header http.Header
	// Cache is the X-Relay-Cache value; empty for an origin.
	Cache string
	// Age is the Age header value (seconds), empty for none.
	Age string
	// UpstreamTime is how long the upstream took to answer, for the log.
	UpstreamTime time.Duration
	// Body yields the bytes. The receiver of an Object must Close it.
	Body Body
	// Verified, when set, waits until the bytes are complete and checked.
	// The content handler calls it before the status line for small
	// objects, so that a failed check is a clean error response rather
	// than an aborted one.
	Verified func(ctx context.Context) error
	// VerifiedRanges, with Verified, says that a byte range of the object
	// may be answered only once Verified returned nil: the content handler
	// then waits for it before the status line of any 206. Set for objects
	// the signed catalog lists, whose ranges are never sent unverified.
	VerifiedRanges bool
}

// SmallObject is the size up to which the content handler waits for an
// object to be verified before it answers (see Object.Verified).
const SmallObject = 64 << 10

// Close releases the body.
func (o *Object) Close() error {
	if o.Body == nil {
		return nil
	}
	return o.Body.Close()
}

// Body is the source of an object's bytes.
type Body interface {
	// CopyTo writes bytes [off, off+n) to w as they become available; n < 0
	// means to the end. It returns the bytes written. An error after some
	// bytes were written means the response must be aborted, not completed.
	CopyTo(ctx context.Context, w io.Writer, off, n int64) (int64, error)
	// Close releases the body; it may be called more than once.
	Close() error
}

// smallBody is the size up to which FileBody always copies in user space.
const smallBody = 128 << 10

// CopyBufferSize is the chunk size of user-space copies: large enough that
// a loopback or 10 GbE socket is kept busy with few system calls.
const CopyBufferSize = 512 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, CopyBufferSize); return &b }}

// GetBuffer returns a CopyBufferSize buffer from a shared pool.
func GetBuffer() *[]byte { return bufPool.Get().(*[]byte) }

// PutBuffer returns a buffer taken with GetBuffer.
func PutBuffer(b *[]byte) { bufPool.Put(b) }

// FileBody is a complete file on disk.
type FileBody struct {
	// R reads the bytes with pread; it may be shared with other bodies.
	R io.ReaderAt
	// File, when set, is a private descriptor sendfile may seek; else
	// sendfile opens Path.
	File *os.File
	// Path is the file, for sendfile when File is not set.
	Path string
	// N is the file's length.
	N int64
	// Sendfile copies with sendfile(2) when the writer supports it: zero
	// copies and little CPU on a real NIC. Off, bytes are copied through a
	// user-space buffer, which is faster on loopback.
	Sendfile bool
	// OnClose runs once, after the file is closed (e.g. releasing the blob
	// for eviction). Optional.
	OnClose func()

	once sync.Once
}

var _ Body = (*FileBody)(nil)

// CopyTo copies a byte range of the file.
func (b *FileBody) CopyTo(ctx context.Context, w io.Writer, off, n int64) (int64, error) {
	if n < 0 || off+n > b.N {
		n = b.N - off
	}
	if n <= 0 {
		return 0, nil
	}
	// Small bodies go through one pread and one write: sendfile would
	// first copy 512 bytes through user space anyway (net/http sniffs
	// before switching to ReadFrom) and send the response in two pieces.
	if b.Sendfile && n > smallBody && (b.File != nil || b.Path != "") {
		f, at := b.File, int64(-1) // at: the descriptor's offset, when known
		if f == nil {
			// sendfile reads from the descriptor's offset: a private one.
			var err error
			if f, err = openPrivate(b.Path); err != nil {
				return 0, err
			}
			defer f.Close()
			at = 0
		}
		if at != off {
			if _, err := f.Seek(off, io.SeekStart); err != nil {
				return 0, err
			}
		}
		// io.Copy hands the *io.LimitedReader of an *os.File to the
		// connection's ReadFrom, which uses sendfile(2).
		return io.Copy(w, &io.LimitedReader{R: f, N: n})
	}
	r := b.R
	if r == nil {
		r = b.File
	}
	return CopyAt(ctx, w, r, off, n)
}

// Close closes File (if set) and runs OnClose.
func (b *FileBody) Close() error {
	var err error
	b.once.Do(func() {
		if b.File != nil {
			err = b.File.Close()
		}
		if b.OnClose != nil {
			b.OnClose()
		}
	})
	return err
}

// ErrShortRead is returned when a source has fewer bytes than promised.
var ErrShortRead = errors.New("object: source shorter than its size")

// CopyAt copies n bytes of r from off to w through a pooled buffer,
// checking ctx between chunks.
func CopyAt(ctx context.Context, w io.Writer, r io.ReaderAt, off, n int64) (int64, error) {
	bp := GetBuffer()
	defer PutBuffer(bp)
	buf := *bp
	var done int64
	for done < n {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		chunk := buf[:min(int64(len(buf)), n-done)]
		m, err := r.ReadAt(chunk, off+done)
		if m > 0 {
			wn, werr := w.Write(chunk[:m])
			done += int64(wn)
			if werr != nil {
				return done, werr
			}
		}
		if err != nil && (err != io.EOF || done < n) {
			if err == io.EOF {
				return done, ErrShortRead
			}
			return done, err
		}
	}
	return done, nil
}

// BytesBody is a body held in memory (a catalog, a small document).
type BytesBody []byte

var _ Body = BytesBody(nil)

// CopyTo writes a byte range of b.
func (b BytesBody) CopyTo(_ context.Context, w io.Writer, off, n int64) (int64, error) {
	if off > int64(len(b)) {
		return 0, nil
	}
	end := int64(len(b))
	if n >= 0 && off+n < end {
		end = off + n
	}
	m, err := w.Write(b[off:end])
	return int64(m), err
}

// Close does nothing.
func (BytesBody) Close() error { return nil }
