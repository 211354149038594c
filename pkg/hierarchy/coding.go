package hierarchy

// Encoded transfers (issue 16): a caller that knows what it fetches (the
// signed length and digest) says so with contentcoding.WithTarget; the
// request then accepts zstd, and a dcz delta against a blob the caller
// holds, and the answer is decoded here, so the caller sees the identity
// response it always saw.

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/relayd/relayd/pkg/contentcoding"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/wire"
)

// ErrCoding wraps a failure of an encoded answer: it did not decode, or
// decoded to other bytes than the signed digest. Nothing of it may be
// committed; the next fetch of the key asks for the identity. It is
// contentcoding.ErrRefused, which callers below this layer test for.
var ErrCoding = contentcoding.ErrRefused

// maxRefusedCodings bounds the keys remembered as "ask identity"; the
// set is cleared when full.
const maxRefusedCodings = 4096

// codings is the client's state of encoded transfers.
type codings struct {
	mu        sync.Mutex
	refused   map[string]struct{} // keys whose encoded answer failed
	fallbacks int64
}

// DeltaFallbacks counts encoded answers refused (corrupt, or not the
// signed bytes): each makes the next fetch of its key a full transfer.
func (c *Client) DeltaFallbacks() int64 {
	c.codings.mu.Lock()
	defer c.codings.mu.Unlock()
	return c.codings.fallbacks
}

// fetchCoded is fetch asking, when ctx carries a contentcoding.Target,
// for an encoded answer, which it decodes.
func (c *Client) fetchCoded(ctx context.Context, key string, hdr http.Header, last *lastAnswer) (*http.Response, error) {
	cd, hdr, coded := c.askCoding(ctx, key, hdr)
	resp, err := c.fetch(ctx, key, hdr, last)
	if err != nil || !coded {
		return resp, err
	}
	if err := c.decodeAnswer(resp, key, cd); err != nil {
		return nil, err
	}
	return resp, nil
}

// askCoding returns the coding a fetch of key asks for, and hdr with the
// request fields for it (a copy); ok is false for an identity request.
func (c *Client) askCoding(ctx context.Context, key string, hdr http.Header) (contentcoding.Target, http.Header, bool) {
	cd, ok := contentcoding.TargetFrom(ctx)
	if !ok || cd.Length <= 0 || cd.Digest.IsZero() || hdr.Get("Range") != "" {
		return cd, hdr, false
	}
	c.codings.mu.Lock()
	_, refused := c.codings.refused[key]
	c.codings.mu.Unlock()
	if refused {
		return cd, hdr, false
	}
	hdr = hdr.Clone()
	if hdr == nil {
		hdr = http.Header{}
	}
	if !cd.Dict.IsZero() && cd.Dict != cd.Digest && cd.LoadDict != nil {
		hdr.Set("Accept-Encoding", wire.CodingDcz+", "+wire.CodingZstd)
		hdr.Set(wire.AvailableDictionaryHeader, contentcoding.FormatAvailableDictionary(cd.Dict))
	} else {
		hdr.Set("Accept-Encoding", wire.CodingZstd)
	}
	return cd, hdr, true
}

// refuseCoding records that key's encoded answer failed.
func (c *Client) refuseCoding(key string) {
	c.codings.mu.Lock()
	defer c.codings.mu.Unlock()
	if c.codings.refused == nil || len(c.codings.refused) >= maxRefusedCodings {
		c.codings.refused = map[string]struct{}{}
	}
	c.codings.refused[key] = struct{}{}
	c.codings.fallbacks++
}

// decodeAnswer turns an encoded 200 into the identity response: the body
// decoded (exactly cd.Length bytes, checked against cd.Digest before the
// last byte is passed on), Content-Encoding gone, Content-Length and ETag
// the identity's. An identity answer is left as it is.
func (c *Client) decodeAnswer(resp *http.Response, key string, cd contentcoding.Target) error {
	coding := strings.TrimSpace(strings.ToLower(resp.Header.Get("Content-Encoding")))
	if resp.StatusCode != http.StatusOK || coding == "" || coding == "identity" {
		return nil
	}
	var dict []byte
	if coding == wire.CodingDcz {
		if cd.LoadDict == nil || cd.Dict.IsZero() {
			c.refuseCoding(key)
			return fmt.Errorf("%w: %s: dcz answer to a request without a dictionary", ErrCoding, key)
		}
		var err error
		if dict, err = cd.LoadDict(); err != nil {
			return fmt.Errorf("hierarchy: %s: load dictionary %s: %w", key, cd.Dict, err)
		}
	}
	dec, err := contentcoding.Decode(resp.Body, coding, dict, cd.Length)
	if err != nil {
		resp.Body.Close()
		c.refuseCoding(key)
		return fmt.Errorf("%w: %s: %w", ErrCoding, key, err)
	}
	resp.Body = c.ContentBody(key, &decodedBody{c: c, key: key, want: cd.Digest, left: cd.Length, dec: dec, raw: resp.Body, h: digest.NewHash()})
	resp.Header.Del("Content-Encoding")
	resp.Header.Set("Content-Length", strconv.FormatInt(cd.Length, 10))
	resp.ContentLength = cd.Length
	resp.Header.Set("Etag", cd.Digest.ETag())
	return nil
}

// decodedBody is a decoded answer. It holds back the last bytes until the
// digest of everything matches: a corrupt delta never yields a whole
// object.
type decodedBody struct {
	c    *Client
	key  string
	want digest.Digest
	left int64
	dec  io.ReadCloser
	raw  io.ReadCloser
	h    hash.Hash
	err  error
}

func (b *decodedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.left == 0 {
		return b.dec.Read(p) // EOF, or ErrTooLong from the exact reader
	}
	n, err := b.dec.Read(p)
	b.h.Write(p[:n])
	b.left -= int64(n)
	if b.left == 0 && digest.FromHash(b.h) != b.want {
		b.c.refuseCoding(b.key)
		b.err = fmt.Errorf("%w: %s: decoded bytes are not %s", ErrCoding, b.key, b.want)
		return 0, b.err
	}
	if err != nil && !errors.Is(err, io.EOF) {
		b.c.refuseCoding(b.key)
		b.err = fmt.Errorf("%w: %s: %w", ErrCoding, b.key, err)
		return n, b.err
	}
	return n, err
}

func (b *decodedBody) Close() error {
	_ = b.dec.Close()
	return b.raw.Close()
}
