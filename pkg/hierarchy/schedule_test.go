package hierarchy

import (
	"fmt"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the DST cases need America/New_York on any machine
)

func mustSchedule(t *testing.T, s string, loc *time.Location) *Schedule {
	t.Helper()
	sc, err := ParseSchedule(s, loc)
	if err != nil {
		t.Fatalf("ParseSchedule(%q): %v", s, err)
	}
	return sc
}

// Bad schedules are refused with an error naming the rule and the part.
func TestParseScheduleErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"Mon-Fri 08:00-18:00", `rule 1 "Mon-Fri 08:00-18:00": no "=RATE"`},
		{"Mon-Fri 08:00-18:00=2MB/s, Mon-Fry=1MB/s", `rule 2 "Mon-Fry=1MB/s": day "Fry"`},
		{"Mon 8:00-18:00=2MB/s", `time "8:00"`},
		{"Mon 08:00-25:00=2MB/s", `time "25:00"`},
		{"Mon 08:60-09:00=2MB/s", `time "08:60"`},
		{"Mon 24:00-06:00=2MB/s", "24:00 only ends a span"},
		{"Mon 08:00-08:00=2MB/s", "empty"},
		{"Mon 08:00=2MB/s", `time span "08:00"`},
		{"Mon-Fri 08:00-18:00=2 parsecs", `rate "2 parsecs"`},
		{"Mon-Fri 08:00-18:00=2", `rate "2"`},
		{"=2MB/s", `nothing before "="`},
		{"Mon 08:00-09:00 10:00-11:00=1MB/s", "at most days and one time span"},
		{"*=1MB/s,", `rule 2 "": no "=RATE"`},
	} {
		_, err := ParseSchedule(c.in, time.UTC)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "upstream-schedule rule ") {
			t.Errorf("ParseSchedule(%q) = %v, want an error with %q", c.in, err, c.want)
		}
	}
	if sc, err := ParseSchedule("  ", nil); sc != nil || err != nil {
		t.Errorf("empty schedule: %v, %v; want none", sc, err)
	}
}

// The first matching rule wins; weekdays, midnight and day ranges that
// wrap the week are read in the schedule's zone.
func TestScheduleAt(t *testing.T) {
	t.Parallel()
	loc := time.FixedZone("UTC+2", 2*3600)
	sc := mustSchedule(t, "Mon-Fri 08:00-18:00=2MB/s, Fri-Mon 22:00-06:00=0, sat=10MB/s, 12:00-12:00:30=1MB/s, *=50MB/s", loc)
	at := func(day, clock string) time.Time { // 2026-12-07 is a Monday
		d := map[string]int{"Mon": 7, "Tue": 8, "Wed": 9, "Thu": 10, "Fri": 11, "Sat": 12, "Sun": 13}[day]
		var h, m, sec int
		if _, err := fmt.Sscanf(clock, "%d:%d:%d", &h, &m, &sec); err != nil {
			t.Fatal(err)
		}
		return time.Date(2026, 12, d, h, m, sec, 0, loc).UTC() // At converts to the zone itself
	}
	for _, c := range []struct {
		day, clock, rule string
		rate             int64
	}{
		{"Mon", "07:59:59", "*=50MB/s", 50e6},           // 06:00 ended the night, 08:00 is to come
		{"Mon", "05:59:59", "Fri-Mon 22:00-06:00=0", 0}, // Sunday night's span
		{"Mon", "08:00:00", "Mon-Fri 08:00-18:00=2MB/s", 2e6},
		{"Wed", "17:59:59", "Mon-Fri 08:00-18:00=2MB/s", 2e6},
		{"Wed", "18:00:00", "*=50MB/s", 50e6},
		{"Wed", "23:00:00", "*=50MB/s", 50e6},           // Wed is not in Fri-Mon
		{"Tue", "03:00:00", "Fri-Mon 22:00-06:00=0", 0}, // Monday night, after midnight
		{"Fri", "22:00:00", "Fri-Mon 22:00-06:00=0", 0},
		{"Sat", "05:00:00", "Fri-Mon 22:00-06:00=0", 0},
		{"Sat", "06:00:00", "sat=10MB/s", 10e6},
		{"Sun", "12:00:10", "12:00-12:00:30=1MB/s", 1e6},
		{"Sun", "12:00:30", "*=50MB/s", 50e6},
	} {
		w := sc.At(at(c.day, c.clock))
		if w.Rule != c.rule || w.Rate != c.rate || w.Held() != (c.rate == 0) {
			t.Errorf("%s %s: window %q at %d (held %v), want %q at %d", c.day, c.clock, w.Rule, w.Rate, w.Held(), c.rule, c.rate)
		}
	}
	if w := mustSchedule(t, "Mon=1MB/s", loc).At(at("Tue", "00:00:00")); w.Limited() || w.Held() || w.Rule != "" {
		t.Errorf("no rule matching: %+v, want no window", w)
	}
}

// Next is the next boundary, across midnight and the end of the week.
func TestScheduleNext(t *testing.T) {
	t.Parallel()
	sc := mustSchedule(t, "Mon-Fri 08:00-18:00=2MB/s, *=50MB/s", time.UTC)
	for _, c := range []struct{ now, next string }{
		{"2026-12-07T07:00:00Z", "2026-12-07T08:00:00Z"},
		{"2026-12-07T08:00:00Z", "2026-12-07T18:00:00Z"},
		{"2026-12-07T18:00:00Z", "2026-12-08T00:00:00Z"}, // midnight: a day rule may start
		{"2026-12-13T23:59:59Z", "2026-12-14T00:00:00Z"},
	} {
		now, _ := time.Parse(time.RFC3339, c.now)
		if got := sc.Next(now).UTC().Format(time.RFC3339); got != c.next {
			t.Errorf("Next(%s) = %s, want %s", c.now, got, c.next)
		}
	}
}

// Across DST changes spans follow the wall clock: on the spring-forward
// night a 01:00-03:00 span lasts one hour, and on the fall-back night a
// 01:00-02:00 span covers both 01:30s.
func TestScheduleDST(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	sc := mustSchedule(t, "01:00-03:00=0, *=50MB/s", ny)
	// 2026-03-08: 02:00 EST becomes 03:00 EDT (07:00 UTC).
	spring := []struct {
		utc  string
		held bool
	}{
		{"2026-03-08T05:59:59Z", false}, // 00:59:59 EST
		{"2026-03-08T06:00:00Z", true},  // 01:00 EST
		{"2026-03-08T06:59:59Z", true},  // 01:59:59 EST
		{"2026-03-08T07:00:00Z", false}, // 03:00 EDT: the span ended, one hour long
	}
	for _, c := range spring {
		tm, _ := time.Parse(time.RFC3339, c.utc)
		if got := sc.At(tm).Held(); got != c.held {
			t.Errorf("%s (%s): held %v, want %v", c.utc, tm.In(ny).Format("15:04:05 MST"), got, c.held)
		}
	}
	if next, _ := time.Parse(time.RFC3339, "2026-03-08T07:00:00Z"); !sc.Next(next.Add(-time.Second)).Equal(next) {
		t.Errorf("Next before the jump = %s, want %s", sc.Next(next.Add(-time.Second)), next)
	}
	// 2026-11-01: 02:00 EDT becomes 01:00 EST (06:00 UTC); 01:30 twice.
	fall := mustSchedule(t, "01:00-02:00=0, *=50MB/s", ny)
	for _, utc := range []string{"2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z"} {
		tm, _ := time.Parse(time.RFC3339, utc)
		if !fall.At(tm).Held() {
			t.Errorf("%s (%s): not held, want held (01:30 both times)", utc, tm.In(ny).Format("15:04 MST"))
		}
	}
	if tm, _ := time.Parse(time.RFC3339, "2026-11-01T07:00:00Z"); fall.At(tm).Held() {
		t.Errorf("02:00 EST: held, want the span over")
	}
}
