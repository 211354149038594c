package proxycache

import (
	"net/http"
	"strings"
	"time"

	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/store"
)

// How a request meets the store: the key it is stored under (cacheKey),
// whether a stored response may answer it (usable, selects), and serving
// one (serveStored).

// cacheKey is the key a request's key is stored under: without its query
// for a path under Config.IgnoreQuery, or for a path the signed catalog
// lists (its identity is its path).
func (c *Cache) cacheKey(key string) string {
	i := strings.IndexByte(key, '?')
	if i < 0 {
		return key
	}
	path := key[:i]
	for _, p := range c.cfg.IgnoreQuery {
		if strings.HasPrefix(path, p) {
			return path
		}
	}
	if c.expect != nil {
		if _, _, ok := c.expect.Expect(path); ok {
			return path
		}
	}
	return key
}

// lookup finds the stored response for a request: the key's own, or the
// variant stored beside it that the request selects (rq.storedAt says
// which). ok says it may be served as it is (usable).
func (c *Cache) lookup(key string, x expectation, rq *request, now time.Time) (store.Entry, *hitInfo, bool, error) {
	e, err := c.store.Get(key)
	if err != nil {
		return e, nil, false, err
	}
	hi, ok := c.usable(key, &e, x, rq, now)
	if !ok && !x.listed && len(hi.vary) > 0 && !varyMatch(hi.vary, rq.h) {
		vk := variantKey(key, hi.vary, rq.h)
		if ve, err := c.store.Get(vk); err == nil {
			e, rq.storedAt = ve, vk
			hi, ok = c.usable(vk, &e, x, rq, now)
		}
	}
	return e, hi, ok, nil
}

// usable reports whether a stored entry may be served without asking the
// upstream: an object the signed catalog lists is immutable and usable
// exactly when its bytes are the listed ones; anything else when the
// request's Vary fields select it and it is fresh enough for the request.
// It returns the entry's hit template, which serving it needs too.
func (c *Cache) usable(key string, e *store.Entry, x expectation, rq *request, now time.Time) (*hitInfo, bool) {
	hi := c.info(key, e, x.listed)
	if x.listed {
		return hi, e.Digest == x.digest
	}
	return hi, !hi.superseded && selects(hi, rq) && rq.accepts(hi, hi.age(now))
}

// selects reports whether a stored response may answer (or, revalidated,
// answer) the request: its Vary fields match (RFC 9111 §4.1), and a
// request with Authorization only where the response allows it.
func selects(hi *hitInfo, rq *request) bool {
	return (len(hi.vary) == 0 || varyMatch(hi.vary, rq.h)) && (!rq.auth || hi.sharedAuth)
}

// reserved reports whether key is under the relay API's prefix.
func reserved(key string) bool { return key == "-" || strings.HasPrefix(key, "-/") }

// noBody reports whether a status never has a body.
func noBody(status int) bool {
	return status == http.StatusNoContent || status == http.StatusNotModified || status < 200
}

// serveStored opens the blob of a stored entry as an object; hi is the
// entry's hit template, nil to look it up.
func (c *Cache) serveStored(key string, e *store.Entry, hi *hitInfo, result string) (*object.Object, error) {
	r, err := c.store.OpenBlob(e.Digest)
	if err != nil {
		return nil, err
	}
	if hi == nil {
		hi = c.info(key, e, false) // stale and revalidated entries are plain
	}
	return &object.Object{
		Key: key, Status: hi.status, Size: r.Size, ETag: hi.etag, LastModified: hi.lastModified, Header: hi.header,
		Age: hi.ageHeader(c.clock.Now()), Cache: result, Body: r.Body(c.cfg.Sendfile),
	}, nil
}
