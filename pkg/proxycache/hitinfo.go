package proxycache

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/store"
)

// hitInfo is what a hit needs of a stored entry, worked out once: its
// freshness and the response headers, so that a hit parses no dates and
// builds no header map. It is valid for the entry it was made from
// (same digest and Stored time); a revalidation or new fill makes a new
// one.
type hitInfo struct {
	d            digest.Digest
	stored       time.Time
	listed       bool
	lifetime     time.Duration
	initialAge   time.Duration // age when stored (RFC 9111 corrected_initial_age)
	header       http.Header   // shared, read-only
	status       int
	etag         string
	lastModified time.Time
	vary         []varyField // the request fields the response varies on
	mayStale     bool        // may be served stale (max-stale, upstream down)
	sharedAuth   bool        // may answer a request with Authorization (RFC 9111 §3.5)
	// superseded: the upstream has sent a new response for the key,
	// which is being stored; this one is never served again.
	superseded bool
}

// maxHitInfos bounds the hit templates kept in memory.
const maxHitInfos = 16384

type hitInfos struct {
	mu sync.RWMutex
	m  map[string]*hitInfo
}

// info returns the template for e, building it when missing or stale.
// listed says whether the catalog lists key: then the entry's identity,
// and its ETag, is its digest.
func (c *Cache) info(key string, e *store.Entry, listed bool) *hitInfo {
	c.infos.mu.RLock()
	hi := c.infos.m[key]
	c.infos.mu.RUnlock()
	if hi != nil && hi.d == e.Digest && hi.stored.Equal(e.Stored) && hi.listed == listed {
		return hi
	}
	ccv, _ := cacheControl(e.Header)
	cc := directives(ccv)
	_, public := cc["public"]
	_, smax := cc["s-maxage"]
	_, mustRevalidate := cc["must-revalidate"]
	hi = &hitInfo{d: e.Digest, stored: e.Stored, listed: listed, lifetime: c.lifetime(e), initialAge: age(e, e.Stored),
		header: servedHeader(e.Header, e.Digest, listed), status: entryStatus(e.Header), etag: e.Header["Etag"],
		vary: variesOn(e.Header), mayStale: mayServeStale(e), sharedAuth: public || smax || mustRevalidate}
	if listed {
		hi.etag = e.Digest.ETag()
	}
	if lm, err := http.ParseTime(e.Header["Last-Modified"]); err == nil {
		hi.lastModified = lm
	}
	c.infos.mu.Lock()
	if len(c.infos.m) >= maxHitInfos {
		for k := range c.infos.m { // drop an arbitrary one
			delete(c.infos.m, k)
			break
		}
	}
	c.infos.m[key] = hi
	c.infos.mu.Unlock()
	return hi
}

// age is the current age of the entry.
func (hi *hitInfo) age(now time.Time) time.Duration {
	return hi.initialAge + max(now.Sub(hi.stored), 0)
}

// ageHeader is the Age value in seconds.
func (hi *hitInfo) ageHeader(now time.Time) string {
	return strconv.FormatInt(int64(hi.age(now)/time.Second), 10)
}

// supersede marks the stored response of key as replaced by the answer a
// fill is receiving: from now on requests wait for that fill instead of
// reading the old entry, which stays in the index until the commit (a
// max-age=0 request must never be followed by a hit on the old bytes).
// It reports whether key had a stored response.
func (c *Cache) supersede(key string) bool {
	e, err := c.store.Get(key)
	if err != nil {
		return false
	}
	old := *c.info(key, &e, false)
	old.superseded = true
	c.infos.mu.Lock()
	c.infos.m[key] = &old
	c.infos.mu.Unlock()
	return true
}

// forget drops the hit template of key: the next hit rebuilds it.
func (c *Cache) forget(key string) {
	c.infos.mu.Lock()
	delete(c.infos.m, key)
	c.infos.mu.Unlock()
}
