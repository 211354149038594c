package proxycache

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/httprange"
	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/store"
)

// fill is one upstream request for one key, shared by every request that
// arrives while it runs. Its bytes go to a store.Writer's temp file; the
// requesters read that file as it grows. What the fill does with each
// answer is decided in cache.go (runFill); this file holds its moving
// parts, calling nothing of cache.go.
type fill struct {
	key      string
	slot     string // its key in Cache.fills: key, or key and a unique suffix for a private fill
	sendfile bool   // Config.Sendfile: readers may use sendfile(2)
	// ctx is the fill's, detached from any one request; promote moves a
	// background fill to the foreground (priority.Promotable).
	ctx     context.Context
	promote func()

	// What the request that started it asked: its header (forwarded
	// upstream, and the values a Vary selects by), no-store, and whether
	// it carried Authorization. requested is when the upstream was asked.
	req       http.Header
	noStore   bool
	auth      bool
	requested time.Time
	replaces  bool // a stored response of key is superseded by this answer
	// staleKey is where the entry a revalidation refreshes is stored;
	// storeKey where the answer is kept: key, or a variant key beside it.
	staleKey, storeKey string

	// ready is closed once the upstream has answered; the fields below it
	// are written before and only read after.
	ready        chan struct{}
	err          error        // failed before any byte
	entry        *store.Entry // revalidated: serve this stored entry
	w            *store.Writer
	size         int64 // -1 if the upstream sent no Content-Length
	etag         string
	lastModified time.Time
	header       http.Header
	status       int
	age          string
	vary         []varyField // the request fields the answer varies on
	upstreamTime time.Duration
	result       string // object.Miss, or object.Peer when the owner relay sent it

	mu       sync.Mutex
	written  int64
	done     bool
	doneErr  error         // failed after the first byte
	progress chan struct{} // closed and replaced whenever written or done changes
	refs     int           // the fill goroutine plus every reader
	// ended is closed when the fill leaves the coalescing map.
	ended   chan struct{}
	endOnce sync.Once
	// interims are the 1xx responses before the answer (interim.go);
	// interimCh is closed and replaced when one is added.
	imu       sync.Mutex
	interims  []interim
	interimCh chan struct{}
	// pin holds the committed blob open while readers still stream it from
	// the temp file's descriptor, so it is not evicted under them.
	pin *store.Reader
}

func newFill(key string, sendfile bool) *fill {
	return &fill{key: key, slot: key, sendfile: sendfile, ready: make(chan struct{}), size: -1, progress: make(chan struct{}), result: object.Miss,
		ended: make(chan struct{}), interimCh: make(chan struct{})}
}

func (f *fill) addRef() {
	f.mu.Lock()
	f.refs++
	f.mu.Unlock()
}

// release drops one reference; the last one closes the temp file.
func (f *fill) release() {
	f.mu.Lock()
	f.refs--
	last := f.refs == 0
	f.mu.Unlock()
	if last && f.w != nil {
		_ = f.w.Close()
	}
	if last && f.pin != nil {
		_ = f.pin.Close()
	}
}

// finished reports whether every byte is in (or the fill failed).
func (f *fill) finished() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.done
}

// fail tells every waiter that the fill produced no bytes: they get err.
func (f *fill) fail(err error) {
	f.err = err
	close(f.ready)
}

// revalidated tells every waiter to serve the stored entry e.
func (f *fill) revalidated(e *store.Entry) {
	f.entry = e
	close(f.ready)
}

// start tells every waiter that bytes are coming into w: size of them (-1
// if unknown), with the etag, status and headers they are sent with (h is
// the fill's own: the fill keeps it).
func (f *fill) start(w *store.Writer, size int64, etag string, status int, h http.Header) {
	f.w = w
	f.size = size
	f.header = h
	f.status = status
	f.lastModified, _ = http.ParseTime(h.Get("Last-Modified"))
	f.etag = etag
	if v := h.Get("Vary"); v != "" {
		f.vary = variesOn(map[string]string{"Vary": v})
		for i := range f.vary {
			f.vary[i].value = varyValue(f.req, f.vary[i].name)
		}
	}
	close(f.ready)
}

// advance publishes bytes written so far.
func (f *fill) advance(n int64) {
	f.mu.Lock()
	f.written = n
	close(f.progress)
	f.progress = make(chan struct{})
	f.mu.Unlock()
}

// finish marks the fill complete (err == nil) or broken.
func (f *fill) finish(err error) {
	f.mu.Lock()
	f.done = true
	f.doneErr = err
	close(f.progress)
	f.progress = make(chan struct{})
	f.mu.Unlock()
}

// visible is how many bytes readers may send. Until the fill is complete
// and verified the last byte written is held back, so no client ever
// receives a whole object that turns out truncated or wrong.
func (f *fill) visible() int64 {
	if f.done && f.doneErr == nil {
		return f.written
	}
	return max(f.written-1, 0)
}

// object is a requester's view of the fill. The reference the requester
// holds passes to the object's body.
func (f *fill) object() *object.Object {
	return &object.Object{
		Key: f.key, Status: f.status, Size: f.size, ETag: f.etag, LastModified: f.lastModified, Header: f.header, Age: f.age,
		Cache: f.result, UpstreamTime: f.upstreamTime, Body: &fillBody{f: f}, Verified: f.wait,
	}
}

// wait blocks until the fill is complete and verified, or failed.
func (f *fill) wait(ctx context.Context) error {
	for {
		f.mu.Lock()
		done, err, ch := f.done, f.doneErr, f.progress
		f.mu.Unlock()
		if done {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stream moves the answer's body into the fill's writer as it arrives,
// publishing progress to the requesters. When the owner relay dies or
// stalls mid-transfer, the rest comes from the upstream (resume).
func (c *Cache) stream(ctx context.Context, f *fill, x expectation, resp *http.Response, fromPeer bool) error {
	err := c.copyBody(f, resp.Body, fromPeer)
	if err != nil && fromPeer && c.ctx.Err() == nil {
		// The owner died or stalled mid-transfer: go upstream ourselves
		// and carry on from the bytes we have. (The owner's broken body
		// is closed on return, like any.)
		c.log.Warn().Err(err).Str("key", f.key).Int64("have", f.w.Written()).Msg("peer transfer broke; resuming from upstream")
		err = c.resume(ctx, f, x, resp)
	}
	return err
}

// resume continues a broken fill from the upstream with a Range request
// for the bytes not yet written of the representation first sent (its
// strong ETag and length, httprange.Pin), asking for the same generation
// as the fill did. The fill's readers hold its first bytes already, so it
// cannot start over: an answer of another representation fails the fill
// instead of splicing it. A 200 of the same representation (an upstream
// that ignores Range) has its first bytes skipped.
func (c *Cache) resume(ctx context.Context, f *fill, x expectation, first *http.Response) error {
	have := f.w.Written()
	pin, err := httprange.PinResponse(first)
	if err != nil {
		return fmt.Errorf("%w: %s: the first answer cannot be resumed: %w", ErrUpstream, f.key, err)
	}
	hdr := http.Header{}
	pin.Header(hdr, have, -1)
	x.ask(hdr)
	resp, err := c.up.Fetch(ctx, f.key, hdr)
	if err != nil {
		return fmt.Errorf("%w: %s: resume from upstream: %w", ErrUpstream, f.key, err)
	}
	defer resp.Body.Close()
	if err := pin.Check(resp, have, -1); err != nil {
		again, perr := httprange.PinResponse(resp)
		if resp.StatusCode != http.StatusOK || perr != nil || again != pin {
			c.resumeRefused.Add(1)
			c.lim.Event(&c.log, zerolog.WarnLevel, "resume refused").Err(err).Str("key", f.key).Int64("offset", have).
				Msg("resume refused: not the same representation; the fill fails instead of splicing it")
			return fmt.Errorf("%w: %s: resume from upstream: %w", ErrUpstream, f.key, err)
		}
		if _, err := io.CopyN(io.Discard, resp.Body, have); err != nil {
			return fmt.Errorf("%w: %s: resume from upstream: %w", ErrUpstream, f.key, err)
		}
	}
	return c.copyBody(f, resp.Body, false)
}

// copyBody moves the upstream (or peer) body into the writer, publishing
// progress.
func (c *Cache) copyBody(f *fill, body io.Reader, fromPeer bool) error {
	counter := &c.upstreamBytes
	if fromPeer {
		counter = &c.peerBytes
	}
	bp := object.GetBuffer()
	defer object.PutBuffer(bp)
	buf := *bp
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := f.w.Write(buf[:n]); err != nil {
				return err
			}
			counter.Add(int64(n))
			f.advance(f.w.Written())
		}
		if rerr == io.EOF {
			if f.size >= 0 && f.w.Written() != f.size {
				return fmt.Errorf("%w: %s: truncated at %d of %d bytes", ErrUpstream, f.key, f.w.Written(), f.size)
			}
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("%w: %s: %w", ErrUpstream, f.key, rerr)
		}
	}
}

// fillBody reads a fill's temp file as it grows.
type fillBody struct {
	f    *fill
	once sync.Once
	// own is this reader's own descriptor of the temp file, for sendfile
	// (which reads from a descriptor's offset); nil until needed or when
	// sendfile is off.
	own *os.File
}

// sendfileChunk is the least a fill reader sends with sendfile: below it a
// user-space copy is as cheap.
const sendfileChunk = 256 << 10

// ownFile opens a private descriptor of the fill's temp file through
// /proc/self/fd, which works even after the file was renamed into the
// store. nil when that is not possible (the reader then copies).
func (b *fillBody) ownFile() *os.File {
	if b.own == nil {
		f, err := os.Open("/proc/self/fd/" + strconv.Itoa(int(b.f.w.File().Fd())))
		if err != nil {
			return nil
		}
		b.own = f
	}
	return b.own
}

var _ object.Body = (*fillBody)(nil)

// CopyTo copies [off, off+n) (n < 0: to the end), waiting for bytes that
// have not arrived yet.
func (b *fillBody) CopyTo(ctx context.Context, w io.Writer, off, n int64) (int64, error) {
	f := b.f
	bp := object.GetBuffer()
	defer object.PutBuffer(bp)
	buf := *bp
	var copied int64
	for {
		pos := off + copied
		if n >= 0 && copied >= n {
			return copied, nil
		}
		f.mu.Lock()
		avail, done, derr, ch := f.visible(), f.done, f.doneErr, f.progress
		f.mu.Unlock()
		if derr != nil {
			return copied, derr
		}
		end := avail
		if n >= 0 {
			end = min(end, off+n)
		}
		if pos < end && f.sendfile && end-pos >= sendfileChunk {
			if own := b.ownFile(); own != nil {
				// With many requesters on one fill (a herd), sendfile
				// spares each of them a copy through user space.
				if _, err := own.Seek(pos, io.SeekStart); err == nil {
					m, err := io.Copy(w, &io.LimitedReader{R: own, N: end - pos})
					copied += m
					if err != nil {
						return copied, err
					}
					continue
				}
			}
		}
		if pos < end {
			chunk := buf[:min(int64(len(buf)), end-pos)]
			m, err := f.w.File().ReadAt(chunk, pos)
			if m > 0 {
				wn, werr := w.Write(chunk[:m])
				copied += int64(wn)
				if werr != nil {
					return copied, werr
				}
			}
			if err != nil && err != io.EOF {
				return copied, err
			}
			continue
		}
		if done {
			if n >= 0 && copied < n {
				return copied, object.ErrShortRead
			}
			return copied, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return copied, ctx.Err()
		}
	}
}

// Close releases the requester's reference to the fill.
func (b *fillBody) Close() error {
	b.once.Do(func() {
		if b.own != nil {
			_ = b.own.Close()
		}
		b.f.release()
	})
	return nil
}
