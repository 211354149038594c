package proxycache

// Requests of other methods than GET and HEAD (RFC 9111 §4): a plain
// cache forwards them, never answers them from the store and never stores
// their answers, and after a non-error answer invalidates what it holds
// for the target URI and the Location and Content-Location URIs of the
// same origin (§4.4).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/relayd/relayd/pkg/cleanpath"
)

// ForwardUpstream is an Upstream that can forward a request of any
// method, once. hierarchy.Client implements it.
type ForwardUpstream interface {
	Forward(ctx context.Context, method, key string, hdr http.Header, body io.Reader, size int64) (*http.Response, error)
}

// ErrNotForwarded: the cache does not forward requests of that method or
// to that key (a verifying cache, the relay API's paths, no upstream that
// forwards).
var ErrNotForwarded = errors.New("proxycache: request not forwarded")

// ErrBodyTooLarge: a forwarded request's body is longer than
// Config.ForwardBodyMax (413).
var ErrBodyTooLarge = errors.New("proxycache: request body too large")

// ForwardRequest is a client's request of another method than GET or HEAD.
type ForwardRequest struct {
	// Method is the request's method.
	Method string
	// Key is the request's key (path, then "?" and the raw query).
	Key string
	// Host is the request's authority: Location and Content-Location
	// URIs with another one are not invalidated (RFC 9111 §4.4).
	Host string
	// Header is the client's request header (read only).
	Header http.Header
	// Body is the request body, Size its length (-1: unknown).
	Body io.Reader
	Size int64
}

// Forward passes a request of another method than GET or HEAD to the
// upstream and returns its answer, whatever the status, with the header
// fields of the hop removed (RFC 9110 §7.6.1); the caller closes the body.
// A 2xx or 3xx answer invalidates the stored responses of the target and
// of its Location and Content-Location on the same host. A cache that
// verifies against a signed catalog forwards nothing (ErrNotForwarded).
func (c *Cache) Forward(ctx context.Context, fr ForwardRequest) (*http.Response, error) {
	fu, ok := c.up.(ForwardUpstream)
	if !ok || !c.cfg.ForwardMethods || c.expect != nil || reserved(fr.Key) {
		return nil, fmt.Errorf("%w: %s %s", ErrNotForwarded, fr.Method, fr.Key)
	}
	bodyMax := c.cfg.ForwardBodyMax
	if fr.Size > bodyMax {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrBodyTooLarge, fr.Size, bodyMax)
	}
	if fr.Body != nil && fr.Size < 0 {
		// No length (chunked): read it first, within the bound, so that
		// the upstream never sees a request whose body breaks off.
		b, err := io.ReadAll(io.LimitReader(fr.Body, bodyMax+1))
		if err != nil {
			return nil, fmt.Errorf("proxycache: reading the request body: %w", err) // the client's failure
		}
		if int64(len(b)) > bodyMax {
			return nil, fmt.Errorf("%w: over %d bytes", ErrBodyTooLarge, bodyMax)
		}
		fr.Body, fr.Size = bytes.NewReader(b), int64(len(b))
	}
	var body *boundedBody
	if fr.Body != nil {
		body = &boundedBody{r: fr.Body, left: bodyMax}
	}
	resp, err := fu.Forward(ctx, fr.Method, fr.Key, forwardHeader(fr.Header), body.reader(), fr.Size)
	if body != nil && body.over.Load() {
		if err == nil {
			resp.Body.Close()
		}
		return nil, fmt.Errorf("%w: over %d bytes", ErrBodyTooLarge, bodyMax)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUpstream, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		c.invalidate(fr.Key)
		for _, field := range []string{"Location", "Content-Location"} {
			if k, ok := locationKeys(fr.Key, fr.Host, upstreamURL(resp), resp.Header.Get(field)); ok {
				c.invalidate(k)
			}
		}
	}
	h := make(http.Header, len(resp.Header))
	drop := connectionNamed(resp.Header)
	for k, v := range resp.Header {
		// Set-Cookie is this client's (the answer is not stored).
		if (!hopByHop[k] || k == "Set-Cookie" || k == "Set-Cookie2") && !drop[k] && !ownHeader(k) {
			h[k] = v
		}
	}
	resp.Header = h
	return resp, nil
}

// boundedBody reads a request body up to a bound and fails beyond it.
type boundedBody struct {
	r    io.Reader
	left int64
	over atomic.Bool // read by Forward while the transport may still be reading
}

// reader is b as an io.Reader: nil for no body.
func (b *boundedBody) reader() io.Reader {
	if b == nil {
		return nil
	}
	return b
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, ErrBodyTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1] // one byte more tells a body at the bound from a longer one
	}
	n, err := b.r.Read(p)
	if b.left -= int64(n); b.left < 0 {
		b.over.Store(true)
		return 0, ErrBodyTooLarge
	}
	return n, err
}

// upstreamURL is the URL the upstream was asked at (nil when unknown).
func upstreamURL(resp *http.Response) *url.URL {
	if resp.Request == nil {
		return nil
	}
	return resp.Request.URL
}

// forwardHeader returns the request fields forwarded with an unsafe
// request: the end-to-end ones but relayd's own (its conditionals, If-Match
// above all, are the client's to send).
func forwardHeader(in http.Header) http.Header {
	h := http.Header{}
	drop := connectionNamed(in)
	for k, v := range in {
		if (hopByHop[k] && k != "Set-Cookie") || drop[k] || ownHeader(k) || k == "Host" || k == "Content-Length" {
			continue
		}
		h[k] = v
	}
	return h
}

// invalidate removes the stored responses of a request key: the key's own
// and its variants (RFC 9111 §4.4). A fill of it in flight still stores
// its answer: it was asked for after, or at the same time as, the change.
func (c *Cache) invalidate(key string) {
	key = c.cacheKey(key)
	if err := c.store.Delete(key); err == nil {
		c.log.Debug().Str("key", key).Msg("invalidated by an unsafe request")
	}
	c.dropVariants(key)
	c.forget(key)
}

// locationKeys returns the keys a Location or Content-Location value
// names on this relay: a reference on the request's own host (relative
// ones always are), or on the upstream's host below its base path (an
// origin names its own host). Other hosts are other origins: never
// invalidated (RFC 9111 §4.4).
func locationKeys(key, host string, upstream *url.URL, ref string) (string, bool) {
	if ref == "" || len(ref) > cleanpath.MaxKeyLen {
		return "", false
	}
	u, err := url.Parse(ref)
	if err != nil || (u.IsAbs() && u.Scheme != "http" && u.Scheme != "https") {
		return "", false
	}
	path, query, _ := strings.Cut(key, "?")
	own := &url.URL{Scheme: "http", Host: host, Path: "/" + path, RawPath: cleanpath.Escape(path), RawQuery: query}
	if k, ok := refKey(own.ResolveReference(u), own.Host, ""); ok {
		return k, true
	}
	if upstream == nil || !u.IsAbs() {
		return "", false
	}
	up := upstream.EscapedPath()
	prefix, found := strings.CutSuffix(up, cleanpath.Escape(path))
	if !found {
		return "", false
	}
	return refKey(upstream.ResolveReference(u), upstream.Host, prefix)
}

// refKey is the key of a resolved reference u on host below the escaped
// path prefix (without its trailing slash).
func refKey(u *url.URL, host, prefix string) (string, bool) {
	p, below := strings.CutPrefix(u.EscapedPath(), prefix)
	if !strings.EqualFold(u.Host, host) || !below {
		return "", false
	}
	k, err := cleanpath.Key(p)
	if err != nil || reserved(k) {
		return "", false
	}
	if u.RawQuery != "" {
		k += "?" + u.RawQuery
	}
	return k, true
}
