package proxycache

// CDN-Cache-Control (RFC 9213): the origin's directives for shared caches
// of a CDN, which relayd is. A valid field replaces Cache-Control and
// Expires for the cache's own decisions (storing, freshness, serving
// stale); the client still gets every field as the origin sent it. The
// field is a Structured Field dictionary (RFC 8941): one that does not
// parse, or gives a known directive a value of the wrong type, is ignored
// as a whole.

import (
	"net/http"
	"strconv"
	"strings"
)

// cdnField is the pseudo-field that holds, as a Cache-Control value, the
// directives of a valid CDN-Cache-Control of a stored response.
const cdnField = ":cdn"

// cdnCacheControl returns the directives of a CDN-Cache-Control value as a
// Cache-Control value; ok is false when the field is absent or invalid.
func cdnCacheControl(lines []string) (cc string, ok bool) {
	if len(lines) == 0 {
		return "", false
	}
	v := strings.Join(lines, ",")
	if len(v) > 4<<10 {
		return "", false
	}
	var out []string
	for v = trimOWS(v); v != ""; {
		key, val, rest, ok := sfMember(v)
		if !ok {
			return "", false
		}
		switch key {
		case "max-age", "s-maxage", "stale-while-revalidate", "stale-if-error":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 {
				return "", false // not a non-negative Integer: the wrong type
			}
			out = append(out, key+"="+val)
		default:
			out = append(out, key) // a flag (private, no-cache, no-store, …) or an extension
		}
		v = trimOWS(rest)
		if v == "" {
			break
		}
		if v[0] != ',' {
			return "", false
		}
		if v = trimOWS(v[1:]); v == "" {
			return "", false // a trailing comma
		}
	}
	return strings.Join(out, ", "), true
}

// sfMember reads one dictionary member: its key, its bare item's text
// ("" for true) and what follows it, parameters skipped.
func sfMember(v string) (key, val, rest string, ok bool) {
	i := 0
	if i < len(v) && (isLcalpha(v[i]) || v[i] == '*') {
		i++
		for i < len(v) && (isLcalpha(v[i]) || isDigit(v[i]) || strings.IndexByte("_-.*", v[i]) >= 0) {
			i++
		}
	}
	if i == 0 {
		return "", "", "", false
	}
	key, v = v[:i], v[i:]
	if v != "" && v[0] == '=' {
		n, ok := sfBareItem(v[1:])
		if !ok {
			return "", "", "", false
		}
		val, v = v[1:1+n], v[1+n:]
	}
	for v != "" && v[0] == ';' { // parameters
		v = strings.TrimLeft(v[1:], " ")
		_, _, r, ok := sfMember(v)
		if !ok {
			return "", "", "", false
		}
		v = r
	}
	return key, val, v, true
}

// sfBareItem returns the length of the bare item v starts with (RFC 8941
// §4.2.3.1): an Integer or Decimal, a String, a Token, a Byte Sequence or
// a Boolean.
func sfBareItem(v string) (int, bool) {
	if v == "" {
		return 0, false
	}
	switch c := v[0]; {
	case c == '-' || isDigit(c):
		i := 0
		if c == '-' {
			i++
		}
		start := i
		for i < len(v) && (isDigit(v[i]) || v[i] == '.') {
			i++
		}
		return i, i > start && i-start <= 16
	case c == '"':
		for i := 1; i < len(v); i++ {
			switch {
			case v[i] == '\\' && i+1 < len(v) && (v[i+1] == '"' || v[i+1] == '\\'):
				i++
			case v[i] == '"':
				return i + 1, true
			case v[i] < 0x20 || v[i] > 0x7e || v[i] == '\\':
				return 0, false
			}
		}
		return 0, false
	case c == '*' || isAlpha(c):
		i := 1
		for i < len(v) && (isTchar(v[i]) || v[i] == ':' || v[i] == '/') {
			i++
		}
		return i, true
	case c == ':':
		end := strings.IndexByte(v[1:], ':')
		return end + 2, end >= 0
	case c == '?':
		return 2, len(v) >= 2 && (v[1] == '0' || v[1] == '1')
	}
	return 0, false
}

func trimOWS(v string) string { return strings.Trim(v, " \t") }
func isLcalpha(c byte) bool   { return c >= 'a' && c <= 'z' }
func isAlpha(c byte) bool     { return isLcalpha(c) || (c >= 'A' && c <= 'Z') }
func isDigit(c byte) bool     { return c >= '0' && c <= '9' }
func isTchar(c byte) bool {
	return isAlpha(c) || isDigit(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// cacheControl is the Cache-Control the cache obeys for a stored response:
// its CDN-Cache-Control's directives when it had a valid one.
func cacheControl(hdr map[string]string) (cc string, cdn bool) {
	if v, ok := hdr[cdnField]; ok {
		return v, true
	}
	return hdr["Cache-Control"], false
}

// keepCDN records, in a stored response's fields, the directives of its
// CDN-Cache-Control (or removes them when it has no valid one).
func keepCDN(hdr map[string]string) {
	if cc, ok := cdnCacheControl(headerLines(hdr["Cdn-Cache-Control"])); ok {
		hdr[cdnField] = cc
	} else {
		delete(hdr, cdnField)
	}
}

func headerLines(v string) []string {
	if v == "" {
		return nil
	}
	return []string{v}
}

// responseCacheControl is the Cache-Control a cache obeys for a response
// it receives (h), and whether it came from CDN-Cache-Control.
func responseCacheControl(h http.Header) (cc string, cdn bool) {
	if cc, ok := cdnCacheControl(h["Cdn-Cache-Control"]); ok {
		return cc, true
	}
	return strings.Join(h.Values("Cache-Control"), ","), false
}
