package httprange

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MaxRanges is the most range specs Parse accepts in one header; more are
// treated as an invalid header (RFC 9110 §14.2 lets a server ignore a Range
// with many small or overlapping ranges).
const MaxRanges = 100

var (
	// ErrInvalid means the header does not parse; RFC 9110 says to ignore
	// it and serve the whole representation with 200.
	ErrInvalid = errors.New("httprange: invalid range")
	// ErrUnsatisfiable means the header parses but no range overlaps the
	// representation; the answer is 416 with UnsatisfiedContentRange.
	ErrUnsatisfiable = errors.New("httprange: unsatisfiable range")
)

// The detailed errors are built once so that a hostile header costs no
// allocation to refuse.
var (
	errUnit     = invalid(`unit is not "bytes"`)
	errNoEquals = invalid(`missing "="`)
	errNoSpecs  = invalid("no range specs")
	errSpec     = invalid("malformed range spec")
	errBackward = invalid("last byte before first byte")
	errTooMany  = invalid("more than " + strconv.Itoa(MaxRanges) + " ranges")
)

func invalid(reason string) error { return fmt.Errorf("%w: %s", ErrInvalid, reason) }

// Range is a satisfiable byte range: Length bytes starting at offset Start.
// Parse only returns ranges with Start >= 0, Length >= 1 and
// Start+Length <= size.
type Range struct {
	Start, Length int64
}

// End is the offset of the last byte of r (inclusive, as in Content-Range).
func (r Range) End() int64 { return r.Start + r.Length - 1 }

// ContentRange is the Content-Range value for r in a representation of size
// bytes, e.g. "bytes 0-99/1000".
func (r Range) ContentRange(size int64) string {
	b := make([]byte, 0, len("bytes -/")+3*20)
	b = append(b, "bytes "...)
	b = strconv.AppendInt(b, r.Start, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, r.End(), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, size, 10)
	return string(b)
}

// UnsatisfiedContentRange is the Content-Range value of a 416 response for a
// representation of size bytes, e.g. "bytes */1000".
func UnsatisfiedContentRange(size int64) string {
	return "bytes */" + strconv.FormatInt(size, 10)
}

// Parse reads a Range header value for a representation of size bytes.
//
// An empty header yields nil, nil: there is no range to apply. Otherwise the
// unit must be "bytes" (in any case) and the specs are comma-separated, with
// optional whitespace around the commas; empty list elements are ignored as
// RFC 9110 §5.6.1 requires. The forms are "first-last" (last clamped to the
// final byte), "first-" (to the end) and "-n" (the final n bytes, the whole
// representation when n >= size).
//
// A syntax error anywhere, first > last, or more than MaxRanges specs make
// the whole header invalid (ErrInvalid). Numerals too large for an int64 are
// valid and mean "beyond the end" (RFC 9110 §14.1.2). Specs that lie wholly
// beyond the end, and "-0", are dropped; if none remain the error is
// ErrUnsatisfiable. A negative size is treated as empty.
func Parse(header string, size int64) ([]Range, error) {
	if header == "" {
		return nil, nil
	}
	s := trimOWS(header)
	eq := strings.IndexByte(s, '=')
	if eq < 0 {
		return nil, errNoEquals
	}
	if !isBytes(s[:eq]) {
		return nil, errUnit
	}
	s = s[eq+1:]
	set := s

	var (
		out   []Range
		specs int
	)
	for s != "" {
		var elem string
		if i := strings.IndexByte(s, ','); i >= 0 {
			elem, s = s[:i], s[i+1:]
		} else {
			elem, s = s, ""
		}
		elem = trimOWS(elem)
		if elem == "" {
			continue
		}
		if specs++; specs > MaxRanges {
			return nil, errTooMany
		}
		r, ok, err := parseSpec(elem, size)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if out == nil {
			// Room for every list element, so Parse allocates once.
			out = make([]Range, 0, min(strings.Count(set, ",")+1, MaxRanges))
		}
		out = append(out, r)
	}
	if specs == 0 {
		return nil, errNoSpecs
	}
	if len(out) == 0 {
		return nil, ErrUnsatisfiable
	}
	return out, nil
}

// parseSpec reads one non-empty range spec; ok is false for a well-formed
// spec that does not overlap a representation of size bytes.
//
// RFC 9110 §14.1.2 says recipients "MUST anticipate potentially large decimal
// numerals and prevent parsing errors due to integer conversion overflows",
// so a numeral beyond int64 is not an error: it saturates at MaxInt64, which
// lies beyond the end of any representation.
func parseSpec(spec string, size int64) (r Range, ok bool, err error) {
	dash := strings.IndexByte(spec, '-')
	if dash < 0 {
		return Range{}, false, errSpec
	}
	first, last := spec[:dash], spec[dash+1:]
	if first == "" { // suffix-range "-n"
		n, ok := parseDigits(last)
		if !ok {
			return Range{}, false, errSpec
		}
		if n == 0 || size <= 0 {
			return Range{}, false, nil
		}
		n = min(n, size)
		return Range{Start: size - n, Length: n}, true, nil
	}
	start, ok := parseDigits(first)
	if !ok {
		return Range{}, false, errSpec
	}
	end := int64(math.MaxInt64)
	if last != "" {
		if end, ok = parseDigits(last); !ok {
			return Range{}, false, errSpec
		}
		if end < start || end == math.MaxInt64 && decimalLess(last, first) {
			return Range{}, false, errBackward
		}
	}
	if start >= size {
		return Range{}, false, nil
	}
	end = min(end, size-1)
	return Range{Start: start, Length: end - start + 1}, true, nil
}

// parseDigits reads a non-empty run of ASCII digits, saturating at
// math.MaxInt64. Unlike strconv.ParseInt it refuses signs and underscores.
func parseDigits(s string) (n int64, ok bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (math.MaxInt64-int64(c-'0'))/10 {
			n = math.MaxInt64
		} else {
			n = n*10 + int64(c-'0')
		}
	}
	return n, true
}

// decimalLess reports whether the digit string a is numerically less than b,
// for numerals too large for parseDigits to tell apart.
func decimalLess(a, b string) bool {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// isBytes reports whether unit is "bytes" in ASCII case-insensitive form.
// (strings.EqualFold would also accept "byteſ" with U+017F.)
func isBytes(unit string) bool {
	const want = "bytes"
	if len(unit) != len(want) {
		return false
	}
	for i := 0; i < len(want); i++ {
		if unit[i]|0x20 != want[i] {
			return false
		}
	}
	return true
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

func trimOWS(s string) string {
	for s != "" && isOWS(s[0]) {
		s = s[1:]
	}
	for s != "" && isOWS(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// ParseContentRange reads a 206 response's Content-Range value,
// "bytes first-last/complete" or "bytes first-last/*" (complete -1).
func ParseContentRange(v string) (Range, int64, error) {
	unit, rest, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !isBytes(unit) {
		return Range{}, 0, invalid("content-range: want bytes first-last/complete")
	}
	span, size, ok := strings.Cut(rest, "/")
	if !ok {
		return Range{}, 0, invalid("content-range: no complete length")
	}
	first, last, ok := strings.Cut(span, "-")
	start, ok1 := parseDigits(first)
	end, ok2 := parseDigits(last)
	if !ok || !ok1 || !ok2 || end < start || end == math.MaxInt64 {
		return Range{}, 0, invalid("content-range: bad first-last")
	}
	total := int64(-1)
	if size != "*" {
		n, ok := parseDigits(size)
		if !ok || n <= end || n == math.MaxInt64 {
			return Range{}, 0, invalid("content-range: bad complete length")
		}
		total = n
	}
	return Range{Start: start, Length: end - start + 1}, total, nil
}
