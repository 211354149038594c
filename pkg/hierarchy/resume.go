// A body that survives its upstream: when a transfer breaks mid-object
// (connection reset, stall, parent killed), the rest is asked of the next
// upstream with Range and If-Range, so the caller reads one whole body and
// no byte crosses the WAN twice. Only the same representation continues it
// (httprange.Pin): the strong ETag and complete length of the first answer.
package hierarchy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/httprange"
	"github.com/relayd/relayd/pkg/wire"
)

// maxResumes bounds how often one body moves to another upstream.
const maxResumes = 8

// resumingBody reads a response body and, when it breaks, goes on from
// another upstream: only from one that sends the same representation (the
// pinned strong ETag and complete length), never spliced from two.
type resumingBody struct {
	c    *Client
	ctx  context.Context
	key  string
	hdr  http.Header
	base *url.URL
	cur  io.ReadCloser
	// pin is the representation the body is made of.
	pin httprange.Pin
	// next is the absolute offset of the next byte; last the last byte
	// wanted (inclusive).
	next, last int64
	resumes    int

	// mu guards cur and closed against a Close from another goroutine
	// (which aborts a Read in progress).
	mu     sync.Mutex
	closed bool
}

// resumable wraps a 200 or 206 body so that it resumes elsewhere, when the
// response pins its representation (a strong ETag and a known complete
// length); otherwise the body is returned as is: Last-Modified or a weak
// ETag cannot tell two versions apart, so such a body is not resumed.
func (c *Client) resumable(ctx context.Context, resp *http.Response, base *url.URL, key string, hdr http.Header) io.ReadCloser {
	pin, err := httprange.PinResponse(resp)
	if err != nil {
		return resp.Body
	}
	b := &resumingBody{c: c, ctx: ctx, key: key, hdr: hdr, base: base, cur: resp.Body, pin: pin, last: pin.Size - 1}
	if resp.StatusCode == http.StatusPartialContent {
		// PinResponse parsed it already.
		rng, _, _ := httprange.ParseContentRange(resp.Header.Get("Content-Range"))
		b.next, b.last = rng.Start, rng.End()
	}
	return b
}

func (b *resumingBody) Read(p []byte) (int, error) {
	for {
		b.mu.Lock()
		cur := b.cur
		b.mu.Unlock()
		n, err := cur.Read(p)
		b.next += int64(n)
		if err == nil || n > 0 && err != io.EOF {
			return n, nil
		}
		if err == io.EOF {
			if b.next <= b.last {
				err = io.ErrUnexpectedEOF
			} else {
				return n, io.EOF
			}
		}
		if b.ctx.Err() != nil || b.isClosed() || b.resumes >= maxResumes {
			return n, err
		}
		if rerr := b.resume(err); rerr != nil {
			return n, errors.Join(err, rerr)
		}
		if n > 0 {
			return n, nil
		}
	}
}

// resume asks the other upstreams, then the fallbacks, for the rest of the
// pinned representation. An answer httprange.Pin.Check refuses (a 200 of a
// new version, another ETag or length, no strong ETag) is not read: the
// bytes already passed on cannot be taken back, so the rest comes from
// the next upstream or not at all.
func (b *resumingBody) resume(cause error) error {
	c := b.c
	c.markFailed(b.base)
	b.mu.Lock()
	_ = b.cur.Close()
	b.mu.Unlock()
	c.lim.Event(&c.log, zerolog.WarnLevel, "broke "+b.base.Host).Err(cause).Str("upstream", b.base.Redacted()).Str("key", b.key).
		Int64("offset", b.next).Msg("transfer broke; resuming from the next upstream")
	hdr := http.Header{}
	for k, v := range b.hdr {
		switch k {
		case "Range", "If-Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since":
		default:
			hdr[k] = v
		}
	}
	b.pin.Header(hdr, b.next, b.last)
	want, _ := strconv.ParseUint(b.hdr.Get(wire.GenerationHeader), 10, 64)
	cands := append(c.candidates(want), c.shuffled(c.fallback)...)
	var errs []error
	for _, base := range cands {
		if base.String() == b.base.String() {
			continue
		}
		resp, err := c.fetchOne(b.ctx, base, b.key, hdr)
		if err != nil {
			c.markFailed(base)
			errs = append(errs, err)
			continue
		}
		if err := b.pin.Check(resp, b.next, b.last); err != nil {
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				c.markFailed(base)
			} else {
				c.refuse(base, b.key, b.next, err)
			}
			errs = append(errs, fmt.Errorf("%s: %w", base.Host, err))
			continue
		}
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			resp.Body.Close()
			return errors.New("body closed")
		}
		b.cur, b.base = resp.Body, base
		b.mu.Unlock()
		b.resumes++
		c.resumes.Add(1)
		c.log.Info().Str("upstream", base.Redacted()).Str("key", b.key).Int64("offset", b.next).Msg("transfer resumed")
		return nil
	}
	if len(errs) == 0 {
		return errors.New("no other upstream to resume from")
	}
	return fmt.Errorf("resume at %d: %w", b.next, errors.Join(errs...))
}

// refuse counts an answer that cannot continue a transfer, and logs it
// (rate-limited).
func (c *Client) refuse(base *url.URL, key string, off int64, err error) {
	c.refused.Add(1)
	c.lim.Event(&c.log, zerolog.WarnLevel, "resume refused").Err(err).Str("upstream", base.Redacted()).Str("key", key).
		Int64("offset", off).Msg("resume refused: not the same representation; the transfer does not splice it")
}

func (b *resumingBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return b.cur.Close()
}

func (b *resumingBody) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}
