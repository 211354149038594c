// Transfer windows: a schedule of rates for background WAN traffic
// (--upstream-schedule), read in the relay's local time zone.
package hierarchy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/relayd/relayd/pkg/units"
)

// Schedule is a parsed --upstream-schedule: rules tried in order, the
// first that matches the local wall-clock time giving the rate of
// background traffic. No rule matching means no window cap.
type Schedule struct {
	rules []rule
	loc   *time.Location
}

// rule is one "DAYS HH:MM-HH:MM=RATE" of a schedule.
type rule struct {
	text string
	// days[d] for time.Weekday d; all true for "*" or no day part.
	days [7]bool
	// start, end are seconds since local midnight; span false: all day.
	// end < start crosses midnight: the part after it belongs to the day
	// the span started on.
	span       bool
	start, end int
	rate       int64 // bytes per second; 0 holds background traffic
}

var dayNames = []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

// ParseSchedule reads a schedule such as
// "Mon-Fri 08:00-18:00=2MB/s, Sat-Sun=10MB/s, 22:00-06:00=0, *=50MB/s":
// comma-separated rules DAYS [HH:MM[:SS]-HH:MM[:SS]]=RATE, or
// HH:MM-HH:MM=RATE (every day), or *=RATE (always). DAYS is a day (Mon …
// Sun) or a range of them (Mon-Fri, Fri-Mon). A span whose end is before
// its start crosses midnight; 24:00 ends a day. RATE is a rate as
// --upstream-rate takes it ("2MB/s"), or 0: background traffic waits
// for the window to end. Times are wall-clock times in loc (nil: the
// relay's local zone, TZ): across a DST change a span lasts as long as
// the clocks say, a span the change skips does not happen that day, and
// one the clocks repeat happens twice. An empty string is no schedule
// (nil, nil). Errors name the rule and the part at fault.
func ParseSchedule(s string, loc *time.Location) (*Schedule, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	if loc == nil {
		loc = time.Local
	}
	sc := &Schedule{loc: loc}
	for i, part := range strings.Split(s, ",") {
		r, err := parseRule(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("upstream-schedule rule %d %q: %w", i+1, strings.TrimSpace(part), err)
		}
		sc.rules = append(sc.rules, r)
	}
	return sc, nil
}

func parseRule(s string) (rule, error) {
	r := rule{text: s}
	when, rateText, ok := strings.Cut(s, "=")
	if !ok {
		return r, errors.New(`no "=RATE": want e.g. "Mon-Fri 08:00-18:00=2MB/s" or "*=50MB/s"`)
	}
	rate, err := units.ParseRate(strings.TrimSpace(rateText))
	if err != nil {
		return r, fmt.Errorf("rate %q: %w", strings.TrimSpace(rateText), err)
	}
	r.rate = rate
	fields := strings.Fields(when)
	if len(fields) == 0 {
		return r, errors.New(`nothing before "=": want days, a time span or "*"`)
	}
	if len(fields) > 2 {
		return r, fmt.Errorf("%q: want at most days and one time span", strings.TrimSpace(when))
	}
	days := fields[0]
	if strings.Contains(days, ":") { // a span alone: every day
		days, fields = "*", append([]string{"*"}, fields...)
	}
	if r.days, err = parseDays(days); err != nil {
		return r, err
	}
	if len(fields) == 2 {
		if fields[1] == "*" {
			return r, nil
		}
		r.span = true
		if r.start, r.end, err = parseSpan(fields[1]); err != nil {
			return r, err
		}
	}
	return r, nil
}

func parseDays(s string) ([7]bool, error) {
	var d [7]bool
	if s == "*" {
		for i := range d {
			d[i] = true
		}
		return d, nil
	}
	from, to, isRange := strings.Cut(s, "-")
	a, err := parseDay(from)
	if err != nil {
		return d, err
	}
	b := a
	if isRange {
		if b, err = parseDay(to); err != nil {
			return d, err
		}
	}
	for i := a; ; i = (i + 1) % 7 {
		d[i] = true
		if i == b {
			break
		}
	}
	return d, nil
}

func parseDay(s string) (int, error) {
	for i, n := range dayNames {
		if strings.EqualFold(s, n) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("day %q: want Mon, Tue, Wed, Thu, Fri, Sat, Sun, a range like Mon-Fri, or *", s)
}

func parseSpan(s string) (start, end int, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("time span %q: want HH:MM-HH:MM", s)
	}
	if start, err = parseClock(a); err != nil {
		return 0, 0, err
	}
	if end, err = parseClock(b); err != nil {
		return 0, 0, err
	}
	switch {
	case start == 24*3600:
		return 0, 0, fmt.Errorf("time span %q: 24:00 only ends a span", s)
	case start == end:
		return 0, 0, fmt.Errorf("time span %q: empty (use 00:00-24:00 for a whole day)", s)
	}
	return start, end, nil
}

// parseClock reads HH:MM or HH:MM:SS (00:00 … 24:00) as seconds.
func parseClock(s string) (int, error) {
	parts := strings.Split(s, ":")
	bad := fmt.Errorf("time %q: want HH:MM or HH:MM:SS, 00:00 to 24:00", s)
	if len(parts) < 2 || len(parts) > 3 {
		return 0, bad
	}
	limits := []int{24, 59, 59}
	secs := 0
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || len(p) != 2 || n < 0 || n > limits[i] {
			return 0, bad
		}
		secs += n * []int{3600, 60, 1}[i]
	}
	if secs > 24*3600 {
		return 0, bad
	}
	return secs, nil
}

// Window is the rule of a schedule in force at some time.
type Window struct {
	// Rule is the rule as written; "" when no rule matches (no cap).
	Rule string
	// Rate is its rate in bytes per second; 0 holds background traffic.
	Rate int64
	// index is the rule's position, -1 for none.
	index int
}

// Held reports whether background traffic waits for the window to end.
func (w Window) Held() bool { return w.index >= 0 && w.Rate == 0 }

// Limited reports whether a rule caps background traffic.
func (w Window) Limited() bool { return w.index >= 0 }

// At returns the window in force at t.
func (s *Schedule) At(t time.Time) Window {
	lt := t.In(s.loc)
	wd := int(lt.Weekday())
	secs := lt.Hour()*3600 + lt.Minute()*60 + lt.Second()
	for i, r := range s.rules {
		if r.matches(wd, secs) {
			return Window{Rule: r.text, Rate: r.rate, index: i}
		}
	}
	return Window{index: -1}
}

func (r rule) matches(wd, secs int) bool {
	switch {
	case !r.span:
		return r.days[wd]
	case r.start < r.end:
		return r.days[wd] && secs >= r.start && secs < r.end
	}
	// Across midnight: the evening of a listed day, or the morning after.
	return (r.days[wd] && secs >= r.start) || (r.days[(wd+6)%7] && secs < r.end)
}

// Next returns the first instant after t at which the window may change:
// a rule's start or end, or a midnight, as the local clocks show them.
func (s *Schedule) Next(t time.Time) time.Time {
	lt := t.In(s.loc)
	var best time.Time
	consider := func(c time.Time) {
		if c.After(t) && (best.IsZero() || c.Before(best)) {
			best = c
		}
	}
	for off := 0; off <= 8; off++ {
		day := func(secs int) time.Time {
			return time.Date(lt.Year(), lt.Month(), lt.Day()+off, 0, 0, secs, 0, s.loc)
		}
		consider(day(0))
		for _, r := range s.rules {
			if r.span {
				consider(day(r.start))
				consider(day(r.end))
			}
		}
		if !best.IsZero() {
			break
		}
	}
	return best
}

// String is the schedule as its rules were written.
func (s *Schedule) String() string {
	texts := make([]string, len(s.rules))
	for i, r := range s.rules {
		texts[i] = r.text
	}
	return strings.Join(texts, ", ")
}
