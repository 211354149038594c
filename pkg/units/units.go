package units

import (
	"bytes"
	"errors"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by every error ParseBytes and ParseRate return.
var ErrInvalid = errors.New("units: invalid value")

// parseError reads `units: invalid size "20QB": unknown unit "QB"`.
type parseError struct {
	kind   string // "size" or "rate"
	value  string // the input, as given
	reason string
}

func (e *parseError) Error() string {
	return "units: invalid " + e.kind + " " + strconv.Quote(e.value) + ": " + e.reason
}

func (e *parseError) Unwrap() error { return ErrInvalid }

// A prefix multiplies a unit; the SI and IEC prefixes are listed from the
// largest down so that formatting can try the largest first.
type prefix struct {
	name string
	mult uint64
}

var (
	siPrefixes = []prefix{
		{"E", 1e18}, {"P", 1e15}, {"T", 1e12}, {"G", 1e9}, {"M", 1e6}, {"K", 1e3},
	}
	iecPrefixes = []prefix{
		{"Ei", 1 << 60}, {"Pi", 1 << 50}, {"Ti", 1 << 40}, {"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10},
	}
)

// lookupPrefix returns the multiplier of an SI or IEC prefix, in any case;
// "" is 1.
func lookupPrefix(p string) (mult uint64, ok bool) {
	if p == "" {
		return 1, true
	}
	for _, t := range [...][]prefix{siPrefixes, iecPrefixes} {
		for _, x := range t {
			if equalFold(p, x.name) {
				return x.mult, true
			}
		}
	}
	return 0, false
}

// ParseBytes reads a size such as "20GiB", "512 MiB", "1.5GB" or "100" (bytes)
// and returns it in bytes. Units are case-insensitive; fractions of a byte
// are truncated. Negative, empty and overflowing values, unknown units and a
// bare prefix ("20G": GiB or GB?) are errors wrapping ErrInvalid.
func ParseBytes(s string) (int64, error) {
	num, unit, reason := splitNumber(s)
	if reason != "" {
		return 0, &parseError{"size", s, reason}
	}
	mult, reason := sizeUnit(unit)
	if reason != "" {
		return 0, &parseError{"size", s, reason}
	}
	n, reason := num.times(mult, 1)
	if reason != "" {
		return 0, &parseError{"size", s, reason}
	}
	return n, nil
}

// sizeUnit returns the multiplier of a size unit: "", "B", or an SI or IEC
// prefix followed by "B".
func sizeUnit(unit string) (uint64, string) {
	if unit == "" {
		return 1, ""
	}
	if p, ok := cutSuffixFold(unit, "b"); ok {
		if mult, ok := lookupPrefix(p); ok {
			return mult, ""
		}
		return 0, "unknown unit " + strconv.Quote(unit)
	}
	if _, ok := lookupPrefix(unit); ok {
		if len(unit) == 1 {
			return 0, "ambiguous unit " + strconv.Quote(unit) + `: write "` +
				strings.ToUpper(unit) + `iB" (1024-based) or "` + strings.ToUpper(unit) + `B" (1000-based)`
		}
		return 0, "unknown unit " + strconv.Quote(unit) + `: write "` + unit + `B"`
	}
	return 0, "unknown unit " + strconv.Quote(unit)
}

// ParseRate reads a transfer rate such as "20MB/s", "100Mbit/s" or
// "1.5 GiB/s" and returns it in bytes per second; bits are divided by eight.
// Zero, with or without a unit, means unlimited and returns 0. A non-zero rate
// needs a unit, and a nonzero rate that truncates to 0 bytes per second is an
// error rather than unlimited.
func ParseRate(s string) (int64, error) {
	num, unit, reason := splitNumber(s)
	if reason != "" {
		return 0, &parseError{"rate", s, reason}
	}
	mult, div, reason := rateUnit(unit)
	if reason != "" {
		if unit == "" && num.mant == 0 {
			return 0, nil
		}
		return 0, &parseError{"rate", s, reason}
	}
	n, reason := num.times(mult, div)
	if reason != "" {
		return 0, &parseError{"rate", s, reason}
	}
	return n, nil
}

// rateUnit returns the multiplier and divisor of a rate unit: a size unit or
// [prefix]"bit", followed by "/s".
func rateUnit(unit string) (mult, div uint64, reason string) {
	if unit == "" {
		return 0, 0, `missing unit: write e.g. "MB/s" or "Mbit/s"`
	}
	base, ok := cutSuffixFold(unit, "/s")
	if !ok {
		return 0, 0, "unknown unit " + strconv.Quote(unit) + `: a rate ends in "/s"`
	}
	if p, ok := cutSuffixFold(base, "bit"); ok {
		if mult, ok := lookupPrefix(p); ok {
			return mult, 8, ""
		}
		return 0, 0, "unknown unit " + strconv.Quote(unit)
	}
	if p, ok := strings.CutSuffix(base, "b"); ok {
		if _, ok := lookupPrefix(p); ok {
			return 0, 0, "ambiguous unit " + strconv.Quote(unit) + `: write "` + p + `B/s" for bytes or "` + p + `bit/s" for bits`
		}
		return 0, 0, "unknown unit " + strconv.Quote(unit)
	}
	if p, ok := strings.CutSuffix(base, "B"); ok {
		if mult, ok := lookupPrefix(p); ok {
			return mult, 1, ""
		}
	}
	return 0, 0, "unknown unit " + strconv.Quote(unit)
}

// decimal is the exact value mant / 10^scale.
type decimal struct {
	mant  uint64
	scale int
}

// pow10 holds every power of ten that fits a uint64.
var pow10 = func() (p [20]uint64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// asciiSpace is the space trimmed around a value; Unicode spaces are not
// space here.
const asciiSpace = " \t\r\n"

// maxScale bounds the decimal places, so that 10^scale * 8 fits a uint64.
const maxScale = 18

// splitNumber splits s (surrounding space allowed) into a non-negative
// decimal number and the unit after it (space between allowed).
func splitNumber(s string) (d decimal, unit string, reason string) {
	s = strings.Trim(s, asciiSpace)
	if s == "" {
		return d, "", "empty"
	}
	if s[0] == '-' {
		return d, "", "negative"
	}
	i := 0
	digits := func(frac bool) {
		start := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		run := s[start:i]
		if frac {
			run = strings.TrimRight(run, "0")
			d.scale = len(run)
		}
		for j := 0; j < len(run); j++ {
			c := uint64(run[j] - '0')
			if d.mant > (math.MaxUint64-c)/10 {
				// An integer part this long is beyond int64 anyway.
				reason = "too large"
				if frac {
					reason = "too many digits"
				}
				return
			}
			d.mant = d.mant*10 + c
		}
	}
	digits(false)
	if i == 0 {
		return d, "", "not a number"
	}
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		digits(true)
		if i == start {
			return d, "", "not a number"
		}
		if d.scale > maxScale {
			return d, "", "too many decimal places"
		}
	}
	if reason != "" {
		return d, "", reason
	}
	return d, strings.TrimLeft(s[i:], " \t"), ""
}

// times returns d * mult / div, truncated, as an int64.
func (d decimal) times(mult, div uint64) (int64, string) {
	hi, lo := bits.Mul64(d.mant, mult)
	den := pow10[d.scale] * div
	if hi >= den {
		return 0, "too large"
	}
	q, _ := bits.Div64(hi, lo, den)
	if q > math.MaxInt64 {
		return 0, "too large"
	}
	if q == 0 && d.mant != 0 {
		return 0, "less than one byte"
	}
	return int64(q), ""
}

// FormatBytes writes n for people to read, in the largest IEC unit it
// reaches, rounded to at most two decimals: 1536 is "1.5 KiB", 20<<30 is
// "20 GiB", 1234567890 is "1.15 GiB", 999 is "999 B". The rounding loses
// precision; Bytes.String is the exact form.
func FormatBytes(n int64) string {
	neg, u := abs(n)
	var b []byte
	if neg {
		b = append(b, '-')
	}
	i := len(iecPrefixes)
	for i > 0 && u >= iecPrefixes[i-1].mult {
		i--
	}
	if i == len(iecPrefixes) {
		b = strconv.AppendUint(b, u, 10)
		return string(append(b, " B"...))
	}
	mult := iecPrefixes[i].mult
	q := u / mult
	hi, lo := bits.Mul64(u%mult, 100)
	frac, rem := bits.Div64(hi, lo, mult)
	if rem >= mult-rem { // round half up
		frac++
	}
	if frac == 100 {
		q, frac = q+1, 0
	}
	if q == 1024 && i > 0 { // 1023.999 KiB reads better as 1 MiB
		i, q = i-1, 1
	}
	b = strconv.AppendUint(b, q, 10)
	b = appendFrac(b, frac, 2)
	b = append(b, ' ')
	b = append(b, iecPrefixes[i].name...)
	return string(append(b, 'B'))
}

// appendFrac appends the fraction f/10^digits as "." and its digits without
// trailing zeros (f=50, digits=3 is ".05"); nothing when f is 0.
func appendFrac(b []byte, f uint64, digits int) []byte {
	if f == 0 {
		return b
	}
	for f%10 == 0 {
		f /= 10
		digits--
	}
	b = append(b, '.')
	s := strconv.FormatUint(f, 10)
	for range digits - len(s) {
		b = append(b, '0')
	}
	return append(b, s...)
}

func abs(n int64) (neg bool, u uint64) {
	if n < 0 {
		return true, -uint64(n)
	}
	return false, uint64(n)
}

// exactDecimals is how many decimals the exact form may use.
const exactDecimals = 3

// formatExact writes n without losing precision. Of the forms "N B" and
// "X.YYY <prefix>B" that parse back to exactly n, it picks the one with the
// fewest digits; among those, one in the preferred family (where "B" counts
// as preferred), then one with fewer decimals. So 1536 is "1.5 KiB", 1e9 is
// "1 GB", 1025 is "1025 B" (not "1.025 KB") and 1152<<20 is "1152 MiB" (not
// "1.125 GiB").
func formatExact(n int64, preferred, other []prefix) string {
	neg, u := abs(n)
	var best, buf []byte
	best = strconv.AppendUint(best, u, 10)
	bestDigits, bestPreferred, bestDecimals := len(best), true, 0
	best = append(best, " B"...)
	for i, family := range [...][]prefix{preferred, other} {
		isPreferred := i == 0
		for _, p := range family {
			if u < p.mult {
				continue
			}
			hi, lo := bits.Mul64(u%p.mult, pow10[exactDecimals])
			frac, rem := bits.Div64(hi, lo, p.mult)
			if rem != 0 {
				continue
			}
			buf = strconv.AppendUint(buf[:0], u/p.mult, 10)
			buf = appendFrac(buf, frac, exactDecimals)
			digits, decimals := len(buf), 0
			if dot := bytes.IndexByte(buf, '.'); dot >= 0 {
				digits, decimals = len(buf)-1, len(buf)-1-dot
			}
			better := digits < bestDigits ||
				digits == bestDigits && (isPreferred && !bestPreferred ||
					isPreferred == bestPreferred && decimals < bestDecimals)
			if !better {
				continue
			}
			buf = append(buf, ' ')
			buf = append(buf, p.name...)
			buf = append(buf, 'B')
			best, buf = buf, best
			bestDigits, bestPreferred, bestDecimals = digits, isPreferred, decimals
		}
	}
	if neg {
		return "-" + string(best)
	}
	return string(best)
}

// Bytes is a size in bytes for use in configuration. It is a flag.Value and
// marshals as text, both through ParseBytes and String.
type Bytes int64

// String is an exact form of b with the fewest digits, IEC units winning
// ties: "20 GiB", "1.5 KiB", "1 GB" (for 1e9, which no IEC unit writes
// briefly), "1025 B". ParseBytes(b.String()) == b for every b >= 0.
func (b Bytes) String() string { return formatExact(int64(b), iecPrefixes, siPrefixes) }

// Set parses s with ParseBytes.
func (b *Bytes) Set(s string) error {
	n, err := ParseBytes(s)
	if err != nil {
		return err
	}
	*b = Bytes(n)
	return nil
}

// MarshalText writes String.
func (b Bytes) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText parses text with ParseBytes.
func (b *Bytes) UnmarshalText(text []byte) error { return b.Set(string(text)) }

// Rate is a transfer rate in bytes per second for use in configuration; 0
// means unlimited. It is a flag.Value and marshals as text, both through
// ParseRate and String.
type Rate int64

// String is an exact form of r in bytes per second with the fewest digits, SI
// units winning ties ("20 MB/s", "12.5 MB/s" for 100Mbit/s, "64 KiB/s"), or
// "0" for unlimited.
// ParseRate(r.String()) == r for every r >= 0.
func (r Rate) String() string {
	if r == 0 {
		return "0"
	}
	return formatExact(int64(r), siPrefixes, iecPrefixes) + "/s"
}

// Set parses s with ParseRate.
func (r *Rate) Set(s string) error {
	n, err := ParseRate(s)
	if err != nil {
		return err
	}
	*r = Rate(n)
	return nil
}

// MarshalText writes String.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses text with ParseRate.
func (r *Rate) UnmarshalText(text []byte) error { return r.Set(string(text)) }

// equalFold is strings.EqualFold for ASCII only, so that no Unicode
// look-alike (the Kelvin sign for "K") passes as a unit.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func cutSuffixFold(s, suffix string) (string, bool) {
	if len(s) < len(suffix) || !equalFold(s[len(s)-len(suffix):], suffix) {
		return s, false
	}
	return s[:len(s)-len(suffix)], true
}
