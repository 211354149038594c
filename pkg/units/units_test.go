package units

import (
	"encoding"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var (
	_ flag.Value               = (*Bytes)(nil)
	_ encoding.TextMarshaler   = Bytes(0)
	_ encoding.TextUnmarshaler = (*Bytes)(nil)
	_ flag.Value               = (*Rate)(nil)
	_ encoding.TextMarshaler   = Rate(0)
	_ encoding.TextUnmarshaler = (*Rate)(nil)
)

func TestParseBytes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   string
		want int64
	}{
		{"bare bytes", "100", 100},
		{"zero", "0", 0},
		{"B", "100B", 100},
		{"lower b", "100b", 100},
		{"GiB", "20GiB", 20 << 30},
		{"MiB", "512MiB", 512 << 20},
		{"KiB", "4KiB", 4096},
		{"TiB", "2TiB", 2 << 40},
		{"PiB", "1PiB", 1 << 50},
		{"EiB", "7EiB", 7 << 60},
		{"KB", "10KB", 10_000},
		{"kB", "10kB", 10_000},
		{"MB", "3MB", 3_000_000},
		{"GB fraction", "1.5GB", 1_500_000_000},
		{"TB", "2TB", 2_000_000_000_000},
		{"PB", "1PB", 1e15},
		{"EB", "9EB", 9e18},
		{"lowercase", "20gib", 20 << 30},
		{"uppercase", "20GIB", 20 << 30},
		{"space", "512 MiB", 512 << 20},
		{"spaces and tab", " 512 \tMiB ", 512 << 20},
		{"fraction IEC", "1.5KiB", 1536},
		{"fraction truncates", "1.1KiB", 1126},
		{"trailing zeros", "1.500000000000000000000000GiB", 3 << 29},
		{"leading zeros", "0000000000000000000000001KiB", 1024},
		{"small fraction", "0.001KB", 1},
		{"max int64", "9223372036854775807", math.MaxInt64},
		{"max int64 B", "9223372036854775807 B", math.MaxInt64},
		{"just below 8 EiB", "7.999999999999999999EiB", 9223372036854775806},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseBytes(tc.in)
			if err != nil || got != tc.want {
				t.Fatalf("ParseBytes(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParseBytesErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
	}{
		{"unknown unit", "20QB", `units: invalid size "20QB": unknown unit "QB"`},
		{"empty", "", `units: invalid size "": empty`},
		{"blank", "  ", `units: invalid size "  ": empty`},
		{"negative", "-1GiB", `units: invalid size "-1GiB": negative`},
		{"plus", "+1GiB", `units: invalid size "+1GiB": not a number`},
		{"no number", "GiB", `units: invalid size "GiB": not a number`},
		{"leading dot", ".5GiB", `units: invalid size ".5GiB": not a number`},
		{"trailing dot", "5.GiB", `units: invalid size "5.GiB": not a number`},
		{"two dots", "1.2.3GiB", `units: invalid size "1.2.3GiB": unknown unit ".3GiB"`},
		{"ambiguous G", "20G", `units: invalid size "20G": ambiguous unit "G": write "GiB" (1024-based) or "GB" (1000-based)`},
		{"ambiguous k", "20k", `units: invalid size "20k": ambiguous unit "k": write "KiB" (1024-based) or "KB" (1000-based)`},
		{"bare IEC prefix", "20Gi", `units: invalid size "20Gi": unknown unit "Gi": write "GiB"`},
		{"bits", "8bit", `units: invalid size "8bit": unknown unit "bit"`},
		{"rate", "20MB/s", `units: invalid size "20MB/s": unknown unit "MB/s"`},
		{"unicode space", "\u00a020GiB", `units: invalid size "\u00a020GiB": not a number`},
		{"kelvin sign", "1\u212aB", "units: invalid size \"1\u212aB\": unknown unit \"\u212aB\""},
		{"overflow", "8EiB", `units: invalid size "8EiB": too large`},
		{"overflow bytes", "9223372036854775808", `units: invalid size "9223372036854775808": too large`},
		{"overflow digits", "99999999999999999999999", `units: invalid size "99999999999999999999999": too large`},
		{"overflow SI", "10EB", `units: invalid size "10EB": too large`},
		{"too many digits", "1.2345678901234567891B", `units: invalid size "1.2345678901234567891B": too many decimal places`},
		{"too many significant digits", "12345678901234.123456789KB", `units: invalid size "12345678901234.123456789KB": too many digits`},
		{"less than a byte", "0.5", `units: invalid size "0.5": less than one byte`},
		{"space inside number", "1 000", `units: invalid size "1 000": unknown unit "000"`},
		{"underscore", "1_000", `units: invalid size "1_000": unknown unit "_000"`},
		{"exponent", "1e9", `units: invalid size "1e9": unknown unit "e9"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseBytes(tc.in)
			if !errors.Is(err, ErrInvalid) || got != 0 {
				t.Fatalf("ParseBytes(%q) = %d, %v; want ErrInvalid", tc.in, got, err)
			}
			if err.Error() != tc.want {
				t.Errorf("error %q\n      want %q", err, tc.want)
			}
		})
	}
}

func TestParseRate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   string
		want int64
	}{
		{"unlimited", "0", 0},
		{"unlimited with unit", "0MB/s", 0},
		{"unlimited decimal", "0.0", 0},
		{"MB/s", "20MB/s", 20_000_000},
		{"MB/s spaced", "20 MB/s", 20_000_000},
		{"MB/s lowercase s", "20MB/S", 20_000_000},
		{"kB/s", "500kB/s", 500_000},
		{"KiB/s", "64KiB/s", 64 << 10},
		{"B/s", "300B/s", 300},
		{"GiB/s fraction", "1.5GiB/s", 3 << 29},
		{"Mbit/s", "100Mbit/s", 12_500_000},
		{"mbit/s", "100mbit/s", 12_500_000},
		{"Gbit/s", "10Gbit/s", 1_250_000_000},
		{"Kibit/s", "1Kibit/s", 128},
		{"bit/s", "80bit/s", 10},
		{"bit/s truncates", "12bit/s", 1},
		{"fraction of Mbit", "1.5Mbit/s", 187_500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseRate(tc.in)
			if err != nil || got != tc.want {
				t.Fatalf("ParseRate(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParseRateErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", `units: invalid rate "": empty`},
		{"negative", "-1MB/s", `units: invalid rate "-1MB/s": negative`},
		{"no unit", "100", `units: invalid rate "100": missing unit: write e.g. "MB/s" or "Mbit/s"`},
		{"no per second", "20MB", `units: invalid rate "20MB": unknown unit "MB": a rate ends in "/s"`},
		{"ambiguous Mb", "100Mb/s", `units: invalid rate "100Mb/s": ambiguous unit "Mb/s": write "MB/s" for bytes or "Mbit/s" for bits`},
		{"ambiguous mb", "100mb/s", `units: invalid rate "100mb/s": ambiguous unit "mb/s": write "mB/s" for bytes or "mbit/s" for bits`},
		{"ambiguous b", "100b/s", `units: invalid rate "100b/s": ambiguous unit "b/s": write "B/s" for bytes or "bit/s" for bits`},
		{"bare prefix", "20M/s", `units: invalid rate "20M/s": unknown unit "M/s"`},
		{"unknown", "20QB/s", `units: invalid rate "20QB/s": unknown unit "QB/s"`},
		{"unknown bits", "20Qbit/s", `units: invalid rate "20Qbit/s": unknown unit "Qbit/s"`},
		{"bps", "100Mbps", `units: invalid rate "100Mbps": unknown unit "Mbps": a rate ends in "/s"`},
		{"less than a byte", "1bit/s", `units: invalid rate "1bit/s": less than one byte`},
		{"overflow", "8EiB/s", `units: invalid rate "8EiB/s": too large`},
		{"zero with bad unit", "0QB/s", `units: invalid rate "0QB/s": unknown unit "QB/s"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseRate(tc.in)
			if !errors.Is(err, ErrInvalid) || got != 0 {
				t.Fatalf("ParseRate(%q) = %d, %v; want ErrInvalid", tc.in, got, err)
			}
			if err.Error() != tc.want {
				t.Errorf("error %q\n      want %q", err, tc.want)
			}
		})
	}
}

func TestFormatBytes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   int64
		want string
	}{
		{"zero", 0, "0 B"},
		{"bytes", 999, "999 B"},
		{"just below KiB", 1023, "1023 B"},
		{"KiB", 1024, "1 KiB"},
		{"KiB and a half", 1536, "1.5 KiB"},
		{"two decimals", 1234567890, "1.15 GiB"},
		{"leading zero decimal", 1024 + 51, "1.05 KiB"},
		{"rounds down", 1024 + 5, "1 KiB"},
		{"rounds up", 1024 + 1019, "2 KiB"},
		{"rounds into next unit", 1<<20 - 1, "1 MiB"},
		{"GiB", 20 << 30, "20 GiB"},
		{"TiB", 3 << 40, "3 TiB"},
		{"max", math.MaxInt64, "8 EiB"},
		{"negative", -1536, "-1.5 KiB"},
		{"min", math.MinInt64, "-8 EiB"},
		{"SI value", 1_000_000_000, "953.67 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := FormatBytes(tc.in); got != tc.want {
				t.Fatalf("FormatBytes(%d) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestBytesString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   Bytes
		want string
	}{
		{"zero", 0, "0 B"},
		{"bytes", 100, "100 B"},
		{"KiB", 1024, "1 KiB"},
		{"fraction KiB", 1536, "1.5 KiB"},
		{"GiB", 20 << 30, "20 GiB"},
		{"SI GB", 1_000_000_000, "1 GB"},
		{"SI KB", 1000, "1 KB"},
		{"SI fraction", 1_500_000_000, "1.5 GB"},
		{"SI decimals", 1_250_000, "1.25 MB"},
		{"integer beats decimals", 1<<30 + 1<<27, "1152 MiB"},
		{"not exact", 1025, "1025 B"},
		{"exact only in KiB", 1<<30 + 1<<10, "1048577 KiB"},
		{"max", math.MaxInt64, "9223372036854775807 B"},
		{"SI tie goes to IEC preference", 8_192_000, "8000 KiB"},
		{"EiB", 7 << 60, "7 EiB"},
		{"negative", -2048, "-2 KiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.in.String(); got != tc.want {
				t.Fatalf("Bytes(%d).String() = %q, want %q", int64(tc.in), got, tc.want)
			}
			if tc.in < 0 {
				return
			}
			var back Bytes
			if err := back.Set(tc.want); err != nil || back != tc.in {
				t.Fatalf("Set(%q) = %d, %v; want %d", tc.want, back, err, tc.in)
			}
		})
	}
}

func TestRateString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   Rate
		want string
	}{
		{"unlimited", 0, "0"},
		{"bytes", 300, "300 B/s"},
		{"MB/s", 20_000_000, "20 MB/s"},
		{"100 Mbit/s", 12_500_000, "12.5 MB/s"},
		{"KiB/s", 64 << 10, "64 KiB/s"},
		{"KiB beats KB", 1024, "1 KiB/s"},
		{"SI wins a tie", 8_192_000, "8192 KB/s"},
		{"decimals when shorter", 8_500_000, "8.5 MB/s"},
		{"integer beats decimals", 1_234_567, "1234567 B/s"},
		{"bytes", 1025, "1025 B/s"},
		{"max", math.MaxInt64, "9223372036854775807 B/s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.in.String(); got != tc.want {
				t.Fatalf("Rate(%d).String() = %q, want %q", int64(tc.in), got, tc.want)
			}
			var back Rate
			if err := back.Set(tc.want); err != nil || back != tc.in {
				t.Fatalf("Set(%q) = %d, %v; want %d", tc.want, back, err, tc.in)
			}
		})
	}
}

func TestFlag(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		args     []string
		wantSize Bytes
		wantRate Rate
		wantErr  bool
	}{
		{"defaults", nil, 20 << 30, 0, false},
		{"set", []string{"-cache-max", "512MiB", "-rate", "100Mbit/s"}, 512 << 20, 12_500_000, false},
		{"bad size", []string{"-cache-max", "20QB"}, 20 << 30, 0, true},
		{"ambiguous rate", []string{"-rate", "100Mb/s"}, 20 << 30, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fs := flag.NewFlagSet("relayd", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			size, rate := Bytes(20<<30), Rate(0)
			fs.Var(&size, "cache-max", "cache size")
			fs.Var(&rate, "rate", "rate limit")
			err := fs.Parse(tc.args)
			if (err != nil) != tc.wantErr || size != tc.wantSize || rate != tc.wantRate {
				t.Fatalf("Parse(%q): size %v rate %v err %v", tc.args, size, rate, err)
			}
			if err != nil && !strings.Contains(err.Error(), "units: invalid") {
				t.Errorf("flag error %q does not carry the units error", err)
			}
		})
	}
}

func TestText(t *testing.T) {
	t.Parallel()
	type config struct {
		CacheMax Bytes `json:"cache_max"`
		Rate     Rate  `json:"rate"`
	}
	for _, tc := range []struct {
		name, in, out string
		want          config
	}{
		{"iec", `{"cache_max":"20GiB","rate":"100Mbit/s"}`, `{"cache_max":"20 GiB","rate":"12.5 MB/s"}`, config{20 << 30, 12_500_000}},
		{"unlimited", `{"cache_max":"1.5 GB","rate":"0"}`, `{"cache_max":"1.5 GB","rate":"0"}`, config{1_500_000_000, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var c config
			if err := json.Unmarshal([]byte(tc.in), &c); err != nil || c != tc.want {
				t.Fatalf("Unmarshal(%s) = %+v, %v; want %+v", tc.in, c, err, tc.want)
			}
			out, err := json.Marshal(c)
			if err != nil || string(out) != tc.out {
				t.Fatalf("Marshal = %s, %v; want %s", out, err, tc.out)
			}
		})
	}
	var c config
	if err := json.Unmarshal([]byte(`{"cache_max":"20QB"}`), &c); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Unmarshal bad size: %v, want ErrInvalid", err)
	}
}

// FuzzRoundTrip checks that String is exact for every non-negative value and
// that FormatBytes stays within its rounding.
func FuzzRoundTrip(f *testing.F) {
	for _, n := range []int64{0, 1, 999, 1000, 1023, 1024, 1536, 1e9, 20 << 30, 12_500_000, 1<<20 - 1, math.MaxInt64} {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, n int64) {
		if n < 0 {
			n = -(n + 1)
		}
		if got, err := ParseBytes(Bytes(n).String()); err != nil || got != n {
			t.Fatalf("ParseBytes(%q) = %d, %v; want %d", Bytes(n).String(), got, err, n)
		}
		if got, err := ParseRate(Rate(n).String()); err != nil || got != n {
			t.Fatalf("ParseRate(%q) = %d, %v; want %d", Rate(n).String(), got, err, n)
		}
		// FormatBytes rounds to two decimals of its unit: within 0.5% plus
		// half a hundredth of the unit, so within 1%.
		s := FormatBytes(n)
		approx, err := ParseBytes(strings.ReplaceAll(s, " ", ""))
		if err != nil && n != 0 {
			if !strings.Contains(err.Error(), "too large") {
				t.Fatalf("FormatBytes(%d) = %q does not parse: %v", n, s, err)
			}
			approx = math.MaxInt64
		}
		if diff := math.Abs(float64(approx) - float64(n)); diff > float64(n)/100 {
			t.Fatalf("FormatBytes(%d) = %q, off by %v", n, s, diff)
		}
	})
}

// refUnits are the size units with their multipliers, for refParseBytes.
var refUnits = map[string]float64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "pb": 1e15, "eb": 1e18,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "pib": 1 << 50, "eib": 1 << 60,
}

var refSize = regexp.MustCompile(`^[ \t\r\n]*([0-9]+(?:\.[0-9]+)?)[ \t]*([A-Za-z]*)[ \t\r\n]*$`)

// refParseBytes is an approximate, floating-point reading of a size.
func refParseBytes(s string) (float64, bool) {
	m := refSize.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	mult, ok := refUnits[strings.ToLower(m[2])]
	f, err := strconv.ParseFloat(m[1], 64)
	return f * mult, ok && err == nil
}

// FuzzParseBytes checks that a size or rate that parses is non-negative and
// prints back to itself, that an accepted size agrees with a floating-point
// reading of it, and that errors always wrap ErrInvalid.
func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{
		"20GiB", "1.5GB", "100", "20QB", "-1", "8EiB", "0.5", "1.1KiB", " 512 mib ", "20G",
		"100Mbit/s", "20 MB/s", "0", "1bit/s", "100Mb/s", "7.999999999999999999EiB",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseBytes(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || n != 0 || !strings.HasPrefix(err.Error(), "units: invalid size ") {
				t.Fatalf("ParseBytes(%q) = %d, %v", s, n, err)
			}
		} else {
			if n < 0 {
				t.Fatalf("ParseBytes(%q) = %d", s, n)
			}
			if back, err := ParseBytes(Bytes(n).String()); err != nil || back != n {
				t.Fatalf("ParseBytes(%q) = %d prints as %q, which parses to %d, %v", s, n, Bytes(n), back, err)
			}
			ref, ok := refParseBytes(s)
			if !ok {
				t.Fatalf("ParseBytes(%q) = %d, but the reference refuses it", s, n)
			}
			// Truncation loses less than a byte; float64 has ~16 digits.
			if diff := ref - float64(n); diff < -1e-9*ref || diff > 1+1e-9*ref {
				t.Fatalf("ParseBytes(%q) = %d, reference %v", s, n, ref)
			}
		}

		r, err := ParseRate(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || r != 0 || !strings.HasPrefix(err.Error(), "units: invalid rate ") {
				t.Fatalf("ParseRate(%q) = %d, %v", s, r, err)
			}
			return
		}
		if r < 0 {
			t.Fatalf("ParseRate(%q) = %d", s, r)
		}
		if back, err := ParseRate(Rate(r).String()); err != nil || back != r {
			t.Fatalf("ParseRate(%q) = %d prints as %q, which parses to %d, %v", s, r, Rate(r), back, err)
		}
	})
}
