// Upstreams that are not relays: a plain static server answers 404 at
// /-/relays and /-/report. It is still a parent (objects are fetched from
// it as configured), but asking it for relays every Refresh and posting a
// report every report interval only fills its log with 404s: after a 404
// those requests wait, longer each time, until it answers 200 again.
package hierarchy

import (
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/relayd/relayd/pkg/clock"
)

// plainMax is the longest wait before asking a plain upstream again.
const plainMax = 10 * time.Minute

// plainBackoff remembers, per upstream and /-/ path, the upstreams that
// answered 404 there. The first wait is first; each further 404 doubles
// it, up to plainMax; any other answer ends the wait (a 200: a relay
// again). Its zero value is ready to use, on the wall clock.
type plainBackoff struct {
	clock clock.Clock // nil: the wall clock

	mu    sync.Mutex
	bases map[string]plainWait // base + path
}

type plainWait struct {
	wait time.Duration
	next time.Time // not asked before
}

func (p *plainBackoff) now() time.Time {
	if p.clock == nil {
		return time.Now()
	}
	return p.clock.Now()
}

// skip reports whether path on base is not to be asked now, and until
// when.
func (p *plainBackoff) skip(base *url.URL, path string) (bool, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w, ok := p.bases[base.String()+path]
	return ok && p.now().Before(w.next), w.next
}

// answered records base's status at path. After a 404 it returns the wait
// before the next request there (0 otherwise) and whether it is the first
// 404 in a row (worth a line in the log).
func (p *plainBackoff) answered(base *url.URL, path string, status int, first time.Duration) (wait time.Duration, firstTime bool) {
	key := base.String() + path
	p.mu.Lock()
	defer p.mu.Unlock()
	if status != http.StatusNotFound {
		delete(p.bases, key)
		return 0, false
	}
	w, ok := p.bases[key]
	w.wait = min(max(first, 2*w.wait), plainMax)
	w.next = p.now().Add(w.wait)
	if p.bases == nil {
		p.bases = map[string]plainWait{}
	}
	p.bases[key] = w
	return w.wait, !ok
}

// plainFirst is the first wait after a 404: twice the normal interval
// (the relay list's Refresh), so at the default 1 min, then 2, 4, 8, 10.
func (c *Client) plainFirst() time.Duration { return 2 * c.cfg.Refresh }

// notRelay records status from base at path and, at the first 404 in a
// row, says so in the log.
func (c *Client) notRelay(base *url.URL, path string, status int) {
	wait, first := c.plain.answered(base, path, status, c.plainFirst())
	if first {
		c.log.Info().Str("upstream", base.Redacted()).Str("path", path).Dur("retry_in", wait).
			Msg("upstream answers 404 here: a plain server, not a relay; asking again less often (up to every 10m)")
	}
}
