package proxycache

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/relayd/relayd/pkg/store"
)

// keptHeaders are the upstream response headers stored with an object:
// those sent back to clients and those freshness and revalidation need.
var keptHeaders = []string{
	"Content-Type", "Content-Encoding", "Content-Disposition", "Content-Language",
	"Last-Modified", "Etag", "Cache-Control", "Expires", "Date", "Age",
}

// forwardedHeaders are the stored headers a client receives as they are.
var forwardedHeaders = []string{
	"Content-Type", "Content-Encoding", "Content-Disposition", "Content-Language",
	"Cache-Control", "Expires",
}

func keepHeaders(h http.Header) map[string]string {
	m := make(map[string]string, 8)
	for _, k := range keptHeaders {
		if v := h.Values(k); len(v) > 0 {
			m[k] = strings.Join(v, ", ")
		}
	}
	return m
}

// directives parses a Cache-Control value into lowercase names and
// unquoted values.
func directives(v string) map[string]string {
	if v == "" {
		return nil
	}
	m := make(map[string]string)
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, _ := strings.Cut(part, "=")
		m[strings.ToLower(strings.TrimSpace(name))] = strings.Trim(strings.TrimSpace(val), `"`)
	}
	return m
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

// storable reports whether a 200 response may be kept by a shared cache.
func storable(h http.Header) bool {
	cc := directives(strings.Join(h.Values("Cache-Control"), ","))
	if _, ok := cc["no-store"]; ok {
		return false
	}
	if _, ok := cc["private"]; ok {
		return false
	}
	return strings.TrimSpace(h.Get("Vary")) != "*"
}

// lifetime is the freshness lifetime of a stored response (RFC 9111 §4.2.1).
func (c *Cache) lifetime(e *store.Entry) time.Duration {
	cc := directives(e.Header["Cache-Control"])
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
	if t, err := http.ParseTime(e.Header["Date"]); err == nil {
		date = t
	}
	if v, ok := e.Header["Expires"]; ok {
		t, err := http.ParseTime(v)
		if err != nil {
			return 0 // an invalid Expires means already expired
		}
		return max(t.Sub(date), 0)
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
	return 0
}

// age is the current age of a stored response (RFC 9111 §4.2.3).
func age(e *store.Entry, now time.Time) time.Duration {
	apparent := time.Duration(0)
	if t, err := http.ParseTime(e.Header["Date"]); err == nil {
		apparent = max(e.Stored.Sub(t), 0)
	}
	var ageValue time.Duration
	if v, err := strconv.ParseInt(strings.TrimSpace(e.Header["Age"]), 10, 64); err == nil && v > 0 {
		ageValue = time.Duration(v) * time.Second
	}
	corrected := ageValue + max(e.Stored.Sub(e.Requested), 0)
	return max(apparent, corrected) + max(now.Sub(e.Stored), 0)
}

// mayServeStale reports whether e may be served stale when the upstream
// fails: not when the upstream said it must be revalidated.
func mayServeStale(e *store.Entry) bool {
	cc := directives(e.Header["Cache-Control"])
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

// refresh merges the headers of a 304 into a stored entry (RFC 9111 §4.3.4).
func refresh(e *store.Entry, h http.Header, requested, received time.Time) {
	for _, k := range []string{"Cache-Control", "Expires", "Date", "Age", "Etag", "Last-Modified"} {
		if v := h.Values(k); len(v) > 0 {
			e.Header[k] = strings.Join(v, ", ")
		} else if k == "Age" {
			delete(e.Header, k)
		}
	}
	e.Requested, e.Stored = requested, received
}
