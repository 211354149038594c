package proxycache

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/relayd/relayd/pkg/store"
)

// directives parses a Cache-Control value into lowercase names and
// unquoted values. Commas inside a quoted value do not split it; of a
// directive given twice the first counts (RFC 9111 §4.2.1).
func directives(v string) map[string]string {
	if v == "" {
		return nil
	}
	m := make(map[string]string)
	for len(v) > 0 {
		var part string
		part, v = nextDirective(v)
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, _ := strings.Cut(part, "=")
		name = strings.ToLower(strings.TrimSpace(name))
		if _, dup := m[name]; dup {
			continue
		}
		val = strings.TrimSpace(val)
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1]
		}
		m[name] = val
	}
	return m
}

// nextDirective splits v at its first comma outside a quoted string.
func nextDirective(v string) (part, rest string) {
	quoted := false
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '"':
			quoted = !quoted
		case '\\':
			if quoted {
				i++
			}
		case ',':
			if !quoted {
				return v[:i], v[i+1:]
			}
		}
	}
	return v, ""
}

// seconds reads a delta-seconds directive; ok is false when absent or bad.
func seconds(cc map[string]string, name string) (time.Duration, bool) {
	v, ok := cc[name]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, true // present but invalid: treat as already stale
	}
	const maxSecs = 1 << 31 // RFC 9111 §1.2.2
	return time.Duration(min(n, maxSecs)) * time.Second, true
}

// heuristic are the statuses a cache may store and reuse without explicit
// freshness (RFC 9110 §15.1).
var heuristic = map[int]bool{200: true, 203: true, 204: true, 300: true, 301: true, 308: true, 404: true, 405: true,
	410: true, 414: true, 501: true}

// storable reports whether a response may be kept by a shared cache (RFC
// 9111 §3, §3.5): not no-store or private, not Vary: *, a status the
// cache understands that is heuristically cacheable or has explicit
// freshness, and, answering a request with Authorization, only when the
// response allows a shared cache to reuse it.
func storable(status int, h http.Header, auth bool) bool {
	ccv, cdn := responseCacheControl(h)
	cc := directives(ccv)
	if _, ok := cc["no-store"]; ok {
		return false
	}
	if _, ok := cc["private"]; ok {
		return false
	}
	if strings.TrimSpace(h.Get("Vary")) == "*" {
		return false
	}
	_, public := cc["public"]
	_, smax := cc["s-maxage"]
	_, mustRevalidate := cc["must-revalidate"]
	if auth && !public && !smax && !mustRevalidate {
		return false
	}
	if heuristic[status] {
		return true
	}
	if status == http.StatusPartialContent || status == http.StatusNotModified || status < 200 || status > 599 {
		return false
	}
	_, maxAge := cc["max-age"]
	return public || smax || maxAge || (!cdn && h.Get("Expires") != "")
}

// lifetime is the freshness lifetime of a stored response (RFC 9111 §4.2.1).
func (c *Cache) lifetime(e *store.Entry) time.Duration {
	ccv, cdn := cacheControl(e.Header)
	cc := directives(ccv)
	if _, ok := cc["no-cache"]; ok {
		return 0 // stored, but revalidated before every use
	}
	if d, ok := seconds(cc, "s-maxage"); ok {
		return d
	}
	if d, ok := seconds(cc, "max-age"); ok {
		return d
	}
	date := e.Stored
	if t, err := parseHTTPDate(e.Header["Date"]); err == nil {
		date = t
	}
	if v, ok := e.Header["Expires"]; ok && !cdn {
		t, err := parseHTTPDate(v)
		if err != nil {
			return 0 // an invalid Expires means already expired
		}
		return max(t.Sub(date), 0)
	}
	status := entryStatus(e.Header)
	if !heuristic[status] {
		return 0
	}
	if c.cfg.DefaultTTL > 0 {
		return c.cfg.DefaultTTL
	}
	// Heuristic freshness only where the upstream sent Last-Modified: a
	// fraction of the time since it last changed, capped. Without any
	// validator or expiry the object is reused only after revalidation.
	if lm, err := http.ParseTime(e.Header["Last-Modified"]); err == nil && date.After(lm) {
		return min(time.Duration(float64(date.Sub(lm))*c.cfg.HeuristicFraction), c.cfg.HeuristicMax)
	}
	if (status == http.StatusNotFound || status == http.StatusGone) && c.cfg.NegativeTTL > 0 {
		return c.cfg.NegativeTTL // a missing object is asked again after NegativeTTL
	}
	return 0
}

// age is the current age of a stored response (RFC 9111 §4.2.3).
func age(e *store.Entry, now time.Time) time.Duration {
	apparent := time.Duration(0)
	if t, err := http.ParseTime(e.Header["Date"]); err == nil {
		apparent = max(e.Stored.Sub(t), 0)
	}
	ageValue := parseAge(e.Header["Age"])
	corrected := ageValue + max(e.Stored.Sub(e.Requested), 0)
	return max(apparent, corrected) + max(now.Sub(e.Stored), 0)
}

// maxAge is the largest delta-seconds (RFC 9111 §1.2.2): any staleness.
const maxAge = (1 << 31) * time.Second

// parseAge reads an Age value (RFC 9111 §5.1): of a list, the first
// member, without parameters; a value that is not a non-negative integer
// (abc, -7200, 7200.0) is ignored, as if absent (the SHOULD of §5.1: the
// response's own freshness decides).
func parseAge(v string) time.Duration {
	if v == "" {
		return 0
	}
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	v = strings.TrimSpace(v)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || v[0] == '+' {
		return 0
	}
	return time.Duration(min(n, 1<<31)) * time.Second
}

// mayServeStale reports whether e may be served stale when the upstream
// fails: not when the upstream said it must be revalidated.
func mayServeStale(e *store.Entry) bool {
	ccv, _ := cacheControl(e.Header)
	cc := directives(ccv)
	for _, d := range []string{"must-revalidate", "proxy-revalidate", "s-maxage", "no-cache"} {
		if _, ok := cc[d]; ok {
			return false
		}
	}
	return true
}

// validators returns the conditional request headers that revalidate e.
func validators(e *store.Entry) http.Header {
	h := http.Header{}
	if v := e.Header["Etag"]; v != "" {
		h.Set("If-None-Match", v)
	}
	if v := e.Header["Last-Modified"]; v != "" {
		h.Set("If-Modified-Since", v)
	}
	return h
}
