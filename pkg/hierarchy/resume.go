// A body that survives its upstream: when a transfer breaks mid-object
// (connection reset, stall, parent killed), the rest is asked of the next
// upstream with Range and If-Range, so the caller reads one whole body and
// no byte crosses the WAN twice.
package hierarchy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/httprange"
)

// maxResumes bounds how often one body moves to another upstream.
const maxResumes = 8

// resumingBody reads a response body and, when it breaks, goes on from
// another upstream.
type resumingBody struct {
	c    *Client
	ctx  context.Context
	key  string
	hdr  http.Header
	base *url.URL
	cur  io.ReadCloser
	// validator is the If-Range value that pins the object version: a
	// strong ETag, else Last-Modified.
	validator string
	// next is the absolute offset of the next byte; end the last byte
	// wanted (inclusive), -1 when the length is unknown.
	next, end int64
	resumes   int

	// mu guards cur and closed against a Close from another goroutine
	// (which aborts a Read in progress).
	mu     sync.Mutex
	closed bool
}

// resumable wraps a 200 or 206 body so that it resumes elsewhere, when the
// response carries a validator that pins the version; otherwise the body
// is returned as is.
func (c *Client) resumable(ctx context.Context, resp *http.Response, base *url.URL, key string, hdr http.Header) io.ReadCloser {
	validator := resp.Header.Get("Etag")
	if validator == "" || strings.HasPrefix(validator, "W/") {
		validator = resp.Header.Get("Last-Modified")
	}
	if validator == "" {
		return resp.Body
	}
	b := &resumingBody{c: c, ctx: ctx, key: key, hdr: hdr, base: base, cur: resp.Body, validator: validator, end: -1}
	switch resp.StatusCode {
	case http.StatusOK:
		if resp.ContentLength >= 0 {
			b.end = resp.ContentLength - 1
		}
	case http.StatusPartialContent:
		rng, _, err := httprange.ParseContentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			return resp.Body
		}
		b.next, b.end = rng.Start, rng.End()
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
			if b.end >= 0 && b.next <= b.end {
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

// resume asks the other upstreams, then the fallbacks, for the rest.
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
	rng := "bytes=" + strconv.FormatInt(b.next, 10) + "-"
	if b.end >= 0 {
		rng += strconv.FormatInt(b.end, 10)
	}
	hdr.Set("Range", rng)
	hdr.Set("If-Range", b.validator)
	want, _ := strconv.ParseUint(b.hdr.Get(catalog.GenerationHeader), 10, 64)
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
		rng, _, rerr := httprange.ParseContentRange(resp.Header.Get("Content-Range"))
		if resp.StatusCode != http.StatusPartialContent || rerr != nil || rng.Start != b.next {
			// 200: the object changed (If-Range did not match) or the
			// upstream ignores Range; either way it cannot continue
			// these bytes.
			resp.Body.Close()
			errs = append(errs, fmt.Errorf("%s: status %d to a resume at %d", base.Host, resp.StatusCode, b.next))
			if resp.StatusCode >= 500 {
				c.markFailed(base)
			}
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
