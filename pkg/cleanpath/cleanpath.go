package cleanpath

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// MaxKeyLen is the longest key, in decoded bytes, that Key accepts.
const MaxKeyLen = 4096

// ErrBadPath is wrapped by every error Key returns; the wrapping error names
// the problem ("dot-dot segment", "backslash", …).
var ErrBadPath = errors.New("cleanpath: bad path")

// The reasons are built once so that rejecting a hostile path does not
// allocate.
var (
	errNoSlash      = bad("missing leading slash")
	errEmptyKey     = bad("empty key")
	errEmptySegment = bad("empty segment")
	errDot          = bad("dot segment")
	errDotDot       = bad("dot-dot segment")
	errPercent      = bad("invalid percent-encoding")
	errNUL          = bad("NUL byte")
	errControl      = bad("control character")
	errBackslash    = bad("backslash")
	errUTF8         = bad("invalid UTF-8")
	errTooLong      = bad("too long")
	errDrive        = bad("drive letter")
)

func bad(reason string) error { return fmt.Errorf("%w: %s", ErrBadPath, reason) }

// Key returns the object key for escapedPath, the form r.URL.EscapedPath()
// returns: it must start with "/", is percent-decoded exactly once and loses
// its leading slash. The returned error wraps ErrBadPath.
//
// Key does not allocate unless escapedPath contains a percent escape.
func Key(escapedPath string) (string, error) {
	if escapedPath == "" || escapedPath[0] != '/' {
		return "", errNoSlash
	}
	k := escapedPath[1:]
	// Each decoded byte takes at most three escaped ones, so this bounds the
	// work done for an absurdly long path before decoding it.
	if len(k) > 3*MaxKeyLen {
		return "", errTooLong
	}
	if strings.IndexByte(k, '%') >= 0 {
		var err error
		if k, err = unescape(k); err != nil {
			return "", err
		}
	}
	if err := check(k); err != nil {
		return "", err
	}
	return k, nil
}

// unescape decodes every %XX in s; it fails on a '%' not followed by two hex
// digits.
func unescape(s string) (string, error) {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", errPercent
		}
		n++
		i += 2
	}
	var b strings.Builder
	b.Grow(len(s) - 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

// check validates a decoded key in one pass.
func check(k string) error {
	if k == "" {
		return errEmptyKey
	}
	if len(k) > MaxKeyLen {
		return errTooLong
	}
	start := 0 // first byte of the current segment
	for i := 0; i < len(k); {
		c := k[i]
		switch {
		case c == '/':
			if err := checkSegment(k[start:i], start == 0); err != nil {
				return err
			}
			start = i + 1
		case c == 0:
			return errNUL
		case c < 0x20 || c == 0x7f:
			return errControl
		case c == '\\':
			return errBackslash
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(k[i:])
			if r == utf8.RuneError && size == 1 {
				return errUTF8
			}
			if r <= 0x9f { // C1 controls, U+0080–U+009F
				return errControl
			}
			i += size
			continue
		}
		i++
	}
	return checkSegment(k[start:], start == 0)
}

func checkSegment(seg string, first bool) error {
	switch seg {
	case "":
		return errEmptySegment
	case ".":
		return errDot
	case "..":
		return errDotDot
	}
	// "C:" and the drive-relative "C:foo" both name a volume on Windows.
	if first && len(seg) >= 2 && seg[1] == ':' && isLetter(seg[0]) {
		return errDrive
	}
	return nil
}

// Escape returns the escaped URL path, with a leading slash, for key: RFC 3986
// unreserved characters, sub-delims, ':', '@' and '/' are kept and every other
// byte becomes %XX with uppercase hex. For every key k that Key returned,
// Key(Escape(k)) == k.
func Escape(key string) string {
	n := 0
	for i := 0; i < len(key); i++ {
		if !keep(key[i]) {
			n++
		}
	}
	if n == 0 {
		return "/" + key
	}
	var b strings.Builder
	b.Grow(1 + len(key) + 2*n)
	b.WriteByte('/')
	for i := 0; i < len(key); i++ {
		c := key[i]
		if keep(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&0xf])
	}
	return b.String()
}

const upperHex = "0123456789ABCDEF"

// keepTable marks the bytes Escape leaves alone.
var keepTable = func() (t [256]bool) {
	const kept = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" +
		"-._~" + // unreserved
		"!$&'()*+,;=" + // sub-delims
		":@/"
	for i := 0; i < len(kept); i++ {
		t[kept[i]] = true
	}
	return t
}()

func keep(c byte) bool { return keepTable[c] }

func isLetter(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'f'
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return (c | 0x20) - 'a' + 10
}

// ErrBadBase: a base URL (a relay, an upstream) is not http(s)://host[:port][/path].
var ErrBadBase = errors.New("cleanpath: bad base URL")

// Base parses the base URL of a relay or upstream: http or https, a host,
// no query or fragment. The path loses its trailing slash, so object P is
// at Base + Escape(P) (Escape starts with the slash): see ObjectURL.
func Base(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: %q: want http(s)://host[:port][/path]", ErrBadBase, s)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// ObjectURL is the URL of the object key below base, a URL from Base:
// base's path followed by Escape(key), so that the server's Key of the
// request path is key again.
func ObjectURL(base *url.URL, key string) string {
	u := *base
	u.Path = base.Path + "/" + key
	u.RawPath = base.EscapedPath() + Escape(key)
	return u.String()
}
