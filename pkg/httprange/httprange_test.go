package httprange

import (
	"errors"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		header string
		size   int64
		want   []Range
	}{
		{"no header", "", 1000, nil},
		{"first hundred", "bytes=0-99", 1000, []Range{{0, 100}}},
		{"single byte", "bytes=5-5", 1000, []Range{{5, 1}}},
		{"last byte", "bytes=999-999", 1000, []Range{{999, 1}}},
		{"last clamped", "bytes=900-5000", 1000, []Range{{900, 100}}},
		{"last clamped from huge", "bytes=0-9223372036854775807", 1000, []Range{{0, 1000}}},
		{"open ended", "bytes=100-", 1000, []Range{{100, 900}}},
		{"open ended from zero", "bytes=0-", 1000, []Range{{0, 1000}}},
		{"suffix", "bytes=-100", 1000, []Range{{900, 100}}},
		{"suffix whole", "bytes=-1000", 1000, []Range{{0, 1000}}},
		{"suffix longer than object", "bytes=-5000", 1000, []Range{{0, 1000}}},
		{"suffix max int", "bytes=-9223372036854775807", 1000, []Range{{0, 1000}}},
		{"unit uppercase", "BYTES=0-0", 10, []Range{{0, 1}}},
		{"unit mixed case", "Bytes=0-0", 10, []Range{{0, 1}}},
		{"leading zeros", "bytes=000-009", 10, []Range{{0, 10}}},
		{"several", "bytes=0-0,-1", 10, []Range{{0, 1}, {9, 1}}},
		{"spaces around commas", "bytes=0-0 , \t2-3,\t-1", 10, []Range{{0, 1}, {2, 2}, {9, 1}}},
		{"surrounding whitespace", " bytes=0-0 ", 10, []Range{{0, 1}}},
		{"empty list elements", "bytes=,0-0,,1-1,", 10, []Range{{0, 1}, {1, 1}}},
		{"order kept", "bytes=5-6,0-1", 10, []Range{{5, 2}, {0, 2}}},
		{"overlap kept", "bytes=0-5,3-8", 10, []Range{{0, 6}, {3, 6}}},
		{"unsatisfiable dropped", "bytes=2000-3000,0-0", 1000, []Range{{0, 1}}},
		{"suffix zero dropped", "bytes=-0,1-1", 1000, []Range{{1, 1}}},
		{"max ranges", "bytes=" + repeatSpec("0-0", MaxRanges), 10, slices.Repeat([]Range{{0, 1}}, MaxRanges)},
		{"max int size", "bytes=9223372036854775806-", math.MaxInt64, []Range{{math.MaxInt64 - 1, 1}}},
		{"huge last clamped", "bytes=0-99999999999999999999", 1000, []Range{{0, 1000}}},
		{"huge last with leading zeros", "bytes=0005-00099999999999999999999", 10, []Range{{5, 5}}},
		{"huge suffix", "bytes=-99999999999999999999", 1000, []Range{{0, 1000}}},
		{"huge first dropped", "bytes=99999999999999999999-,0-0", 1000, []Range{{0, 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tc.header, tc.size)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("Parse(%q, %d) = %v, %v; want %v", tc.header, tc.size, got, err, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		header string
		size   int64
		want   error
	}{
		{"no equals", "bytes 0-1", 10, ErrInvalid},
		{"only unit", "bytes", 10, ErrInvalid},
		{"other unit", "items=0-1", 10, ErrInvalid},
		{"long s lookalike", "byte\u017f=0-1", 10, ErrInvalid},
		{"space before equals", "bytes =0-1", 10, ErrInvalid},
		{"no specs", "bytes=", 10, ErrInvalid},
		{"only commas", "bytes=, ,", 10, ErrInvalid},
		{"no dash", "bytes=5", 10, ErrInvalid},
		{"only dash", "bytes=-", 10, ErrInvalid},
		{"backwards", "bytes=5-4", 10, ErrInvalid},
		{"backwards beyond end", "bytes=50-40", 10, ErrInvalid},
		{"negative", "bytes=--5", 10, ErrInvalid},
		{"plus sign", "bytes=+1-2", 10, ErrInvalid},
		{"letters", "bytes=a-b", 10, ErrInvalid},
		{"hex", "bytes=0x1-2", 10, ErrInvalid},
		{"underscore", "bytes=1_0-20", 100, ErrInvalid},
		{"space inside spec", "bytes=1 -2", 10, ErrInvalid},
		{"two dashes", "bytes=1-2-3", 10, ErrInvalid},
		{"semicolon", "bytes=0-1;2-3", 10, ErrInvalid},
		{"huge backwards", "bytes=99999999999999999999-99999999999999999998", 10, ErrInvalid},
		{"huge backwards to max int", "bytes=9223372036854775808-9223372036854775807", 10, ErrInvalid},
		{"huge first", "bytes=9223372036854775808-", 10, ErrUnsatisfiable},
		{"huge first and last", "bytes=99999999999999999999-99999999999999999999", math.MaxInt64, ErrUnsatisfiable},
		{"syntax error beats unsatisfiable", "bytes=100-200,x", 10, ErrInvalid},
		{"too many", "bytes=" + repeatSpec("0-0", MaxRanges+1), 10, ErrInvalid},
		{"too many unsatisfiable", "bytes=" + repeatSpec("50-60", MaxRanges+1), 10, ErrInvalid},
		{"start at size", "bytes=10-", 10, ErrUnsatisfiable},
		{"start beyond size", "bytes=2000-3000", 1000, ErrUnsatisfiable},
		{"suffix zero", "bytes=-0", 1000, ErrUnsatisfiable},
		{"all dropped", "bytes=-0, 20-30, 10-", 10, ErrUnsatisfiable},
		{"empty object", "bytes=0-0", 0, ErrUnsatisfiable},
		{"empty object open", "bytes=0-", 0, ErrUnsatisfiable},
		{"empty object suffix", "bytes=-5", 0, ErrUnsatisfiable},
		{"negative size", "bytes=-5", -1, ErrUnsatisfiable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tc.header, tc.size)
			if !errors.Is(err, tc.want) || got != nil {
				t.Fatalf("Parse(%q, %d) = %v, %v; want %v", tc.header, tc.size, got, err, tc.want)
			}
			other := ErrUnsatisfiable
			if tc.want == ErrUnsatisfiable {
				other = ErrInvalid
			}
			if errors.Is(err, other) {
				t.Fatalf("Parse(%q, %d) error %v is both invalid and unsatisfiable", tc.header, tc.size, err)
			}
		})
	}
}

func TestContentRange(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		r    Range
		size int64
		want string
		end  int64
	}{
		{"first hundred", Range{0, 100}, 1000, "bytes 0-99/1000", 99},
		{"single byte", Range{5, 1}, 10, "bytes 5-5/10", 5},
		{"last byte", Range{999, 1}, 1000, "bytes 999-999/1000", 999},
		{"huge", Range{0, math.MaxInt64}, math.MaxInt64, "bytes 0-9223372036854775806/9223372036854775807", math.MaxInt64 - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.r.ContentRange(tc.size); got != tc.want {
				t.Errorf("ContentRange = %q, want %q", got, tc.want)
			}
			if got := tc.r.End(); got != tc.end {
				t.Errorf("End = %d, want %d", got, tc.end)
			}
		})
	}
	if got := UnsatisfiedContentRange(1000); got != "bytes */1000" {
		t.Errorf("UnsatisfiedContentRange(1000) = %q", got)
	}
}

func TestAllocs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header string
		max    float64
	}{
		{"single", "bytes=0-99", 1},
		{"several", "bytes=0-0, 5-9, -1", 1},
		{"invalid", "bytes=x-y", 0},
		{"unsatisfiable", "bytes=5000-", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, func() { _, _ = Parse(tc.header, 1000) }); n > tc.max {
				t.Errorf("Parse(%q) allocates %v times, want <= %v", tc.header, n, tc.max)
			}
		})
	}
}

func repeatSpec(spec string, n int) string {
	return strings.TrimSuffix(strings.Repeat(spec+",", n), ",")
}

// refParse is a deliberately plain second implementation of the same rules,
// built on the strings and strconv packages, for FuzzParse to compare with.
func refParse(header string, size int64) ([]Range, error) {
	if header == "" {
		return nil, nil
	}
	unit, set, ok := strings.Cut(strings.Trim(header, " \t"), "=")
	if !ok || len(unit) != 5 || strings.ToLower(unit) != "bytes" {
		return nil, ErrInvalid
	}
	var out []Range
	specs := 0
	for _, spec := range strings.Split(set, ",") {
		spec = strings.Trim(spec, " \t")
		if spec == "" {
			continue
		}
		specs++
		if specs > MaxRanges {
			return nil, ErrInvalid
		}
		first, last, ok := strings.Cut(spec, "-")
		if !ok || first == "" && last == "" {
			return nil, ErrInvalid
		}
		num := func(s string) (int64, bool) {
			if s == "" || strings.Trim(s, "0123456789") != "" {
				return 0, false
			}
			n, err := strconv.ParseInt(s, 10, 64)
			if errors.Is(err, strconv.ErrRange) {
				return math.MaxInt64, true // beyond any size
			}
			return n, err == nil
		}
		if first == "" {
			n, ok := num(last)
			if !ok {
				return nil, ErrInvalid
			}
			if n > 0 && size > 0 {
				out = append(out, Range{max(0, size-n), min(n, size)})
			}
			continue
		}
		a, ok := num(first)
		if !ok {
			return nil, ErrInvalid
		}
		b := int64(math.MaxInt64)
		if last != "" {
			if b, ok = num(last); !ok {
				return nil, ErrInvalid
			}
			var fb, lb big.Int
			fb.SetString(first, 10)
			lb.SetString(last, 10)
			if lb.Cmp(&fb) < 0 {
				return nil, ErrInvalid
			}
		}
		if a < size {
			out = append(out, Range{a, min(b, size-1) - a + 1})
		}
	}
	if specs == 0 {
		return nil, ErrInvalid
	}
	if len(out) == 0 {
		return nil, ErrUnsatisfiable
	}
	return out, nil
}

func FuzzParse(f *testing.F) {
	for _, seed := range []struct {
		h string
		n int64
	}{
		{"", 10}, {"bytes=0-99", 1000}, {"bytes=100-", 1000}, {"bytes=-100", 1000},
		{"bytes=-0", 1000}, {"BYTES=0-0, 5-9 ,-1", 10}, {"bytes=5-4", 10}, {"bytes=x", 10},
		{"bytes=0-9223372036854775807", 1000}, {"bytes=9223372036854775808-", 10},
		{"bytes=0-0", 0}, {"bytes=,,0-0,", 10}, {"items=0-1", 10}, {"bytes=-5", -1},
		{"bytes=0-", math.MaxInt64}, {"bytes=-1", math.MinInt64},
	} {
		f.Add(seed.h, seed.n)
	}
	f.Fuzz(func(t *testing.T, header string, size int64) {
		got, err := Parse(header, size)
		switch {
		case err == nil:
		case errors.Is(err, ErrInvalid) != errors.Is(err, ErrUnsatisfiable):
			if got != nil {
				t.Fatalf("Parse(%q, %d) = %v with error %v", header, size, got, err)
			}
		default:
			t.Fatalf("Parse(%q, %d) error %v is not exactly one of the sentinels", header, size, err)
		}
		if err == nil && header != "" && (len(got) == 0 || len(got) > MaxRanges) {
			t.Fatalf("Parse(%q, %d) = %d ranges", header, size, len(got))
		}
		for _, r := range got {
			// Start+Length <= size, written so that it cannot overflow.
			if r.Start < 0 || r.Length < 1 || r.Start > size-r.Length {
				t.Fatalf("Parse(%q, %d) returned out-of-bounds %+v", header, size, r)
			}
			if e := r.End(); e < r.Start || e >= size {
				t.Fatalf("Parse(%q, %d): %+v has End %d", header, size, r, e)
			}
			want := "bytes " + strconv.FormatInt(r.Start, 10) + "-" + strconv.FormatInt(r.End(), 10) + "/" + strconv.FormatInt(size, 10)
			if cr := r.ContentRange(size); cr != want {
				t.Fatalf("ContentRange = %q, want %q", cr, want)
			}
		}
		ref, refErr := refParse(header, size)
		if !slices.Equal(got, ref) || !errors.Is(err, refErr) && !(err == nil && refErr == nil) {
			t.Fatalf("Parse(%q, %d) = %v, %v; reference gives %v, %v", header, size, got, err, ref, refErr)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	for _, tc := range []struct{ name, header string }{
		{"single", "bytes=0-99"},
		{"suffix", "bytes=-500"},
		{"ten", "bytes=" + repeatSpec("0-9", 10)},
		{"max", "bytes=" + repeatSpec("100-199", MaxRanges)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = Parse(tc.header, 1<<20)
			}
		})
	}
}

func TestParseContentRange(t *testing.T) {
	cases := []struct {
		in         string
		start, end int64
		total      int64
		ok         bool
	}{
		{"bytes 0-99/1000", 0, 99, 1000, true},
		{"bytes 500-999/*", 500, 999, -1, true},
		{"BYTES 5-5/6", 5, 5, 6, true},
		{"bytes 0-99/99", 0, 0, 0, false},
		{"bytes 9-1/100", 0, 0, 0, false},
		{"bytes */100", 0, 0, 0, false},
		{"bytes 0-/100", 0, 0, 0, false},
		{"items 0-1/2", 0, 0, 0, false},
		{"bytes -1-5/9", 0, 0, 0, false},
		{"bytes 0-99999999999999999999/*", 0, 0, 0, false},
		{"", 0, 0, 0, false},
	}
	for _, tc := range cases {
		r, total, err := ParseContentRange(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && (r.Start != tc.start || r.End() != tc.end || total != tc.total) {
			t.Errorf("%q = %d-%d/%d, want %d-%d/%d", tc.in, r.Start, r.End(), total, tc.start, tc.end, tc.total)
		}
	}
}

func FuzzParseContentRange(f *testing.F) {
	f.Add("bytes 0-99/1000")
	f.Add("bytes 1-2/*")
	f.Fuzz(func(t *testing.T, s string) {
		r, total, err := ParseContentRange(s)
		if err != nil {
			return
		}
		if r.Start < 0 || r.Length < 1 || (total != -1 && r.End() >= total) {
			t.Fatalf("%q gave %+v/%d", s, r, total)
		}
		if total >= 0 {
			if back, _, err := ParseContentRange(r.ContentRange(total)); err != nil || back != r {
				t.Fatalf("%q does not round-trip: %v", s, err)
			}
		}
	})
}
