package proxycache

// The response headers a stored object keeps (RFC 9111 §3.1), how a 304
// updates them (§3.2, §4.3.4), and what a client is sent from them.

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/wire"
)

// Bounds of what one stored response keeps: an upstream is hostile, and
// every stored response's headers live in the index. Fields beyond them
// (in name order) are dropped; a response whose every field fits is kept
// whole.
const (
	// MaxStoredFields is the most header fields one stored response keeps.
	MaxStoredFields = 64
	// MaxStoredHeaderBytes bounds the names and values kept, in bytes.
	MaxStoredHeaderBytes = 8 << 10
)

// Pseudo-fields kept in store.Entry.Header beside the response's own
// fields. ':' is not a token character, so no header field has these names.
const (
	// statusField is the status of a stored response other than 200.
	statusField = ":status"
	// varyPrefix + canonical name holds the normalised value of a request
	// header the stored variant was selected by (Vary, RFC 9111 §4.1).
	varyPrefix = ":v:"
)

// hopByHop are the fields a cache never stores or forwards (RFC 9110
// §7.6.1), plus Content-Length (the blob's size says it) and the fields a
// shared cache must not hand to another client (Set-Cookie).
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true, "Trailer": true,
	"Transfer-Encoding": true, "Upgrade": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Content-Length": true, "Set-Cookie": true, "Set-Cookie2": true,
}

// ownHeader reports whether a field is relayd's own (X-Relay-*): never
// stored from an upstream nor forwarded to one.
func ownHeader(k string) bool { return wire.OwnHeader(k) }

// connectionNamed returns the fields the Connection header names, which
// are hop-by-hop for this message (RFC 9110 §7.6.1).
func connectionNamed(h http.Header) map[string]bool {
	v := h.Values("Connection")
	if len(v) == 0 {
		return nil
	}
	m := map[string]bool{}
	for _, line := range v {
		for name := range strings.SplitSeq(line, ",") {
			if name = strings.TrimSpace(name); name != "" {
				m[http.CanonicalHeaderKey(name)] = true
			}
		}
	}
	return m
}

// endToEnd calls fn for every end-to-end field of h (names sorted, values
// joined with ", ") until fn returns false.
func endToEnd(h http.Header, fn func(k, v string) bool) {
	drop := connectionNamed(h)
	keys := make([]string, 0, len(h))
	for k := range h {
		if !hopByHop[k] && !drop[k] && !ownHeader(k) && k != "" && k[0] != ':' {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !fn(k, strings.Join(h[k], ", ")) {
			return
		}
	}
}

// keepHeaders returns the fields of a response to store, bounded by
// MaxStoredFields and MaxStoredHeaderBytes. A response without a valid
// Date gets the time it was received (RFC 9110 §6.6.1).
func keepHeaders(h http.Header, status int, received time.Time) map[string]string {
	m := make(map[string]string, min(len(h), MaxStoredFields)+2)
	bytes := 0
	endToEnd(h, func(k, v string) bool {
		if len(m) >= MaxStoredFields {
			return false
		}
		if bytes+len(k)+len(v) > MaxStoredHeaderBytes {
			return true // a smaller field may still fit
		}
		bytes += len(k) + len(v)
		m[k] = v
		return true
	})
	if _, err := http.ParseTime(m["Date"]); err != nil {
		m["Date"] = received.UTC().Format(http.TimeFormat)
	}
	if status != http.StatusOK {
		m[statusField] = statusText(status)
	}
	keepCDN(m)
	return m
}

func statusText(status int) string {
	return string([]byte{byte('0' + status/100), byte('0' + status/10%10), byte('0' + status%10)})
}

// entryStatus is the status of a stored response.
func entryStatus(hdr map[string]string) int {
	v := hdr[statusField]
	if len(v) != 3 {
		return http.StatusOK
	}
	return int(v[0]-'0')*100 + int(v[1]-'0')*10 + int(v[2]-'0')
}

// refresh merges the headers of a 304 into a stored entry (RFC 9111
// §3.2, §4.3.4): each end-to-end field of the 304 replaces the stored one;
// the stored Age goes unless the 304 sends one.
func refresh(hdr map[string]string, h http.Header, received time.Time) {
	delete(hdr, "Age")
	n, bytes := 0, 0
	for k, v := range hdr {
		n++
		bytes += len(k) + len(v)
	}
	endToEnd(h, func(k, v string) bool {
		old, had := hdr[k]
		grow := len(v) - len(old)
		if !had {
			grow += len(k)
		}
		if (!had && n >= MaxStoredFields) || bytes+grow > MaxStoredHeaderBytes {
			return true
		}
		if !had {
			n++
		}
		bytes += grow
		hdr[k] = v
		return true
	})
	if _, err := http.ParseTime(hdr["Date"]); err != nil || h.Get("Date") == "" {
		hdr["Date"] = received.UTC().Format(http.TimeFormat)
	}
	keepCDN(hdr)
}

// servedHeader is what a client is sent of a stored response: every stored
// field but the pseudo-fields and Age (the cache computes it); for an
// object the catalog lists, not the upstream's ETag either (its identity
// is its digest). A plain object's digest goes in Repr-Digest (RFC 9530).
func servedHeader(hdr map[string]string, d digest.Digest, listed bool) http.Header {
	h := make(http.Header, len(hdr)+1)
	for k, v := range hdr {
		if k == "" || k[0] == ':' || k == "Age" || (listed && k == "Etag") {
			continue
		}
		h[k] = []string{v}
	}
	if !listed && !d.IsZero() && entryStatus(hdr) == http.StatusOK {
		h["Repr-Digest"] = []string{"sha-256=:" + base64.StdEncoding.EncodeToString(d[:]) + ":"}
	}
	return h
}

// responseHeader is what the requesters of a fill are sent of the
// upstream's answer: its end-to-end fields, with Date when it sent none.
func responseHeader(h http.Header, received time.Time) http.Header {
	out := make(http.Header, len(h))
	endToEnd(h, func(k, _ string) bool {
		out[k] = h[k]
		return true
	})
	delete(out, "Age") // the object's Age says it
	if _, err := http.ParseTime(out.Get("Date")); err != nil {
		out["Date"] = []string{received.UTC().Format(http.TimeFormat)}
	}
	return out
}
