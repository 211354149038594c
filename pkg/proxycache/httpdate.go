package proxycache

// A strict HTTP-date parser (RFC 9110 §5.6.7): the three formats at their
// fixed widths, names in any case. Go's http.ParseTime is lenient where
// the RFC is not (two spaces, a one-digit hour) and strict where a cache
// may be lenient (a zone written "gmt"); RFC 9111 §5.3 makes an Expires
// that is not a valid HTTP-date one in the past.

import (
	"errors"
	"strings"
	"time"
)

var errBadDate = errors.New("proxycache: not an HTTP-date")

var (
	shortDays = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
	longDays  = []string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
	months    = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
)

// parseHTTPDate parses an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"),
// an rfc850-date ("Sunday, 06-Nov-94 08:49:37 GMT") or an asctime-date
// ("Sun Nov  6 08:49:37 1994").
func parseHTTPDate(v string) (time.Time, error) {
	switch {
	case len(v) == 29 && v[3] == ',': // IMF-fixdate
		if !oneOf(v[:3], shortDays) || !fixed(v, 3, ", ") || !fixed(v, 7, " ") || !fixed(v, 11, " ") ||
			!fixed(v, 16, " ") || !fixed(v, 25, " ") || !strings.EqualFold(v[26:], "GMT") {
			return time.Time{}, errBadDate
		}
		return build(v[5:7], v[8:11], v[12:16], v[17:25])
	case strings.IndexByte(v, ',') > 0: // rfc850-date
		day, rest, _ := strings.Cut(v, ",")
		if !oneOf(day, longDays) || len(rest) != 23 || rest[0] != ' ' || !fixed(rest, 3, "-") || !fixed(rest, 7, "-") ||
			!fixed(rest, 10, " ") || !fixed(rest, 19, " ") || !strings.EqualFold(rest[20:], "GMT") {
			return time.Time{}, errBadDate
		}
		yy, ok := digits(rest[8:10])
		if !ok {
			return time.Time{}, errBadDate
		}
		year := 1900 + yy
		if yy < 70 {
			year = 2000 + yy
		}
		return build(rest[1:3], rest[4:7], itoa4(year), rest[11:19])
	case len(v) == 24: // asctime-date
		if !oneOf(v[:3], shortDays) || !fixed(v, 3, " ") || !fixed(v, 7, " ") || !fixed(v, 10, " ") || !fixed(v, 19, " ") {
			return time.Time{}, errBadDate
		}
		day := v[8:10]
		if day[0] == ' ' {
			day = "0" + day[1:]
		}
		return build(day, v[4:7], v[20:24], v[11:19])
	}
	return time.Time{}, errBadDate
}

// build checks and assembles the parts: a 2-digit day, a month name, a
// 4-digit year and HH:MM:SS.
func build(day, month, year, clock string) (time.Time, error) {
	d, okD := digits(day)
	y, okY := digits(year)
	h, okH := digits(clock[0:2])
	m, okM := digits(clock[3:5])
	s, okS := digits(clock[6:8])
	mon := 0
	for i, name := range months {
		if strings.EqualFold(month, name) {
			mon = i + 1
		}
	}
	if !okD || !okY || !okH || !okM || !okS || mon == 0 || clock[2] != ':' || clock[5] != ':' ||
		d < 1 || d > 31 || h > 23 || m > 59 || s > 60 {
		return time.Time{}, errBadDate
	}
	t := time.Date(y, time.Month(mon), d, h, m, s, 0, time.UTC)
	if t.Day() != d { // 31 Feb
		return time.Time{}, errBadDate
	}
	return t, nil
}

func fixed(v string, at int, want string) bool { return v[at:at+len(want)] == want }

func oneOf(v string, names []string) bool {
	for _, n := range names {
		if strings.EqualFold(v, n) {
			return true
		}
	}
	return false
}

// digits parses a run of ASCII digits only (no sign, no space).
func digits(v string) (int, bool) {
	if v == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
		n = n*10 + int(v[i]-'0')
	}
	return n, true
}

func itoa4(n int) string {
	return string([]byte{byte('0' + n/1000), byte('0' + n/100%10), byte('0' + n/10%10), byte('0' + n%10)})
}
