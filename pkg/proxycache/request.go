package proxycache

// What a client's request asks of the cache (RFC 9111 §5.2.1): its
// Cache-Control directives, Pragma: no-cache, Authorization, the request
// headers a Vary names, and the headers a fill forwards upstream.

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// request is a client's request as the cache sees it. The zero value (no
// request: a prefetch, a peer without headers) asks nothing special.
type request struct {
	h http.Header // the client's header, read only; nil for none

	maxAge, maxStale, minFresh          time.Duration
	hasMaxAge, hasMaxStale, hasMinFresh bool
	noCache, noStore, onlyIfCached      bool
	// auth: the request carries Authorization, so it is served from the
	// store only where the stored response allows it (RFC 9111 §3.5).
	auth bool
	// storedAt is the variant key of the stored response Get found for
	// the request, "" when it is the key's own.
	storedAt string
}

type requestKey struct{}

// WithRequest hands a client's request header to the cache: Get then
// honours its directives and forwards its end-to-end fields upstream.
// The header must not change while the request is served.
func WithRequest(ctx context.Context, h http.Header) context.Context {
	return &requestCtx{Context: ctx, h: h}
}

// requestFrom parses the request carried by ctx.
func requestFrom(ctx context.Context) request {
	h, _ := ctx.Value(requestKey{}).(http.Header)
	rq := request{h: h}
	if h == nil {
		return rq
	}
	rq.auth = len(h["Authorization"]) > 0
	ccv, ok := h["Cache-Control"]
	if !ok {
		// Pragma counts only without Cache-Control (RFC 9111 §5.4).
		for _, p := range h["Pragma"] {
			if _, nc := directives(p)["no-cache"]; nc {
				rq.noCache = true
			}
		}
		return rq
	}
	cc := directives(strings.Join(ccv, ","))
	_, rq.noCache = cc["no-cache"]
	_, rq.noStore = cc["no-store"]
	_, rq.onlyIfCached = cc["only-if-cached"]
	rq.maxAge, rq.hasMaxAge = seconds(cc, "max-age")
	rq.minFresh, rq.hasMinFresh = seconds(cc, "min-fresh")
	if v, ok := cc["max-stale"]; ok {
		rq.hasMaxStale = true
		rq.maxStale = maxAge // no value: any staleness
		if v != "" {
			rq.maxStale, _ = seconds(cc, "max-stale")
		}
	}
	return rq
}

// accepts reports whether a stored response of the given lifetime and
// current age satisfies the request without going upstream: fresh
// enough for max-age and min-fresh, or stale within max-stale when the
// response allows serving it stale.
func (rq *request) accepts(hi *hitInfo, age time.Duration) bool {
	if rq.noCache || (rq.auth && !hi.sharedAuth) {
		return false
	}
	if rq.hasMaxAge && age > rq.maxAge {
		return false
	}
	if rq.hasMinFresh && hi.lifetime-age < rq.minFresh {
		return false
	}
	if hi.lifetime > age {
		return true
	}
	return rq.hasMaxStale && hi.mayStale && age-hi.lifetime <= rq.maxStale
}

// notForwarded are request fields a fill does not send upstream: the
// cache asks its own conditionals and ranges, and Host is the upstream's.
var notForwarded = map[string]bool{
	"Host": true, "If-None-Match": true, "If-Modified-Since": true, "If-Match": true, "If-Unmodified-Since": true,
	"If-Range": true, "Range": true, "Te": true,
}

// forward returns the request fields a fill sends upstream: every
// end-to-end field but relayd's own and those the cache sets itself.
func (rq *request) forward() http.Header {
	h := http.Header{}
	if rq.h == nil {
		return h
	}
	drop := connectionNamed(rq.h)
	for k, v := range rq.h {
		if hopByHop[k] || drop[k] || ownHeader(k) || notForwarded[k] {
			continue
		}
		h[k] = v
	}
	return h
}

// varyValue is a request field's value as a Vary comparison sees it
// (RFC 9111 §4.1): its lines joined with commas, whitespace around list
// members removed.
func varyValue(h http.Header, name string) string {
	v := h.Values(name)
	if len(v) == 0 {
		return ""
	}
	var b strings.Builder
	for i, line := range v {
		for j, member := range strings.Split(line, ",") {
			if i > 0 || j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strings.Join(strings.Fields(member), " "))
		}
	}
	return b.String()
}

// varyNames lists the canonical field names of a Vary value; star is set
// for "*", which no request matches.
func varyNames(v string) (names []string, star bool) {
	for name := range strings.SplitSeq(v, ",") {
		name = strings.TrimSpace(name)
		switch name {
		case "":
		case "*":
			star = true
		default:
			names = append(names, http.CanonicalHeaderKey(name))
		}
	}
	return names, star
}

// Bounds of the request values a stored variant keeps (Vary): the names
// come from the upstream, the values from a client.
const (
	maxVaryFields = 8
	maxVaryBytes  = 2 << 10
)

// varyKeep records, in a stored entry's fields, the values of the request
// fields the response varies on. It reports false, and the response is
// not stored, when they exceed maxVaryFields or maxVaryBytes.
func varyKeep(hdr map[string]string, req http.Header) bool {
	names, _ := varyNames(hdr["Vary"])
	if len(names) > maxVaryFields {
		return false
	}
	n := 0
	for _, name := range names {
		v := varyValue(req, name)
		if n += len(name) + len(v); n > maxVaryBytes {
			return false
		}
		hdr[varyPrefix+name] = v
	}
	return true
}

// varyMatch reports whether a request selects a stored variant: every
// field the response varies on has the value it was stored for.
func varyMatch(vary []varyField, req http.Header) bool {
	for _, f := range vary {
		if f.star || varyValue(req, f.name) != f.value {
			return false
		}
	}
	return true
}

// varyField is one request field a stored response varies on.
type varyField struct {
	name, value string
	star        bool
}

// variesOn returns the Vary fields of a stored entry (nil for none).
func variesOn(hdr map[string]string) []varyField {
	v, ok := hdr["Vary"]
	if !ok {
		return nil
	}
	names, star := varyNames(v)
	var out []varyField
	if star {
		out = append(out, varyField{star: true})
	}
	for _, n := range names {
		out = append(out, varyField{name: n, value: hdr[varyPrefix+n]})
	}
	return out
}
