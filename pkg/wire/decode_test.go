package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// countingReader counts what the decoder pulled.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestDecodeReportRoundTrip(t *testing.T) {
	t.Parallel()
	sent := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	want := Report{Group: "branch-a", Node: "a-1", Mode: "proxy", URL: "http://a-1:20080", Generation: 1 << 60, Ready: false,
		Problem: "disk full", Upstream: []string{"http://hq-1:20080", "http://hq-2:20080"},
		Cache: &CacheStats{Objects: 2, Bytes: 10, Hits: 3, Misses: 4, UpstreamBytes: 5}, Agents: 7, Sent: sent,
		MetadataVerified: sent.Add(-time.Minute), MetadataExpires: sent.Add(time.Hour),
		Children: []Report{{Group: "shop", Node: "s-1", Mode: "proxy", Generation: 3, Ready: true, Sent: sent,
			Children: []Report{{Group: "kiosk", Node: "k-1", Sent: sent}}}}}
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeReport(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", got, want)
	}
	// Unknown fields (a newer child) and nulls are fine.
	got, err = DecodeReport(strings.NewReader(`{"group":"g","node":"n","future":{"a":[1,{"b":null}],"c":"d"},"cache":null,
		"children":null,"upstream":null,"problem":null,"cache2":{"x":1}}`))
	if err != nil || got.Group != "g" || got.Cache != nil || got.Children != nil {
		t.Fatalf("unknown fields: %+v %v", got, err)
	}
}

func TestDecodeReportClamps(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in     string
		agents int
		hits   int64
	}{
		{`-5`, 0, 0},
		{`1000000000000000000000000000000`, maxAgents, maxFigure},
		{`9223372036854775807`, maxAgents, maxFigure},
		{`-9223372036854775809`, 0, 0},
		{`12`, 12, 12},
	} {
		r, err := DecodeReport(strings.NewReader(fmt.Sprintf(`{"group":"g","node":"n","agents":%s,"cache":{"hits":%s}}`, tc.in, tc.in)))
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if r.Agents != tc.agents || r.Cache.Hits != tc.hits {
			t.Errorf("%s: agents %d hits %d, want %d %d", tc.in, r.Agents, r.Cache.Hits, tc.agents, tc.hits)
		}
	}
}

func TestDecodeReportRefuses(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]string{
		"not json":          `{"group":`,
		"no node":           `{"group":"g"}`,
		"array":             `[]`,
		"trailing":          `{"group":"g","node":"n"} {}`,
		"negative gen":      `{"group":"g","node":"n","generation":-1}`,
		"float gen":         `{"group":"g","node":"n","generation":1.5}`,
		"string gen":        `{"group":"g","node":"n","generation":"1"}`,
		"long name":         `{"group":"` + strings.Repeat("g", 300) + `","node":"n"}`,
		"children object":   `{"group":"g","node":"n","children":{}}`,
		"bad child":         `{"group":"g","node":"n","children":[{"group":"x"}]}`,
		"many upstreams":    `{"group":"g","node":"n","upstream":[` + strings.Repeat(`"u",`, 64) + `"u"]}`,
		"bad time":          `{"group":"g","node":"n","sent":"yesterday"}`,
		"bad expiry":        `{"group":"g","node":"n","metadata_expires":"soon"}`,
		"deep unknown":      `{"group":"g","node":"n","x":` + strings.Repeat("[", 20) + strings.Repeat("]", 20) + `}`,
		"ready not boolean": `{"group":"g","node":"n","ready":"yes"}`,
	} {
		if _, err := DecodeReport(strings.NewReader(in)); !errors.Is(err, ErrBadReport) {
			t.Errorf("%s: %v, want ErrBadReport", name, err)
		}
	}
}

// hostileChildren is an 8 MiB report of tiny children, as an attacker
// sends it: ~335k entries, far past the 20,000-relay limit.
func hostileChildren(size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"group":"evil","node":"e","children":[`)
	for i := 0; b.Len() < size-64; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"group":"g","node":"%d"}`, i)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// TestDecodeReportStopsWhileReading: each limit is hit while reading, long
// before the end of a hostile body, with bounded allocation.
func TestDecodeReportStopsWhileReading(t *testing.T) {
	deep := strings.Repeat(`{"group":"g","node":"n","children":[`, 100000)
	for _, tc := range []struct {
		name     string
		body     []byte
		maxRead  int64
		contains string
	}{
		{"nodes", hostileChildren(8 << 20), 1 << 20, "more than 20000 relays"},
		{"depth", []byte(deep), 4 << 10, "deeper than 16 levels"},
		{"huge string", []byte(`{"group":"` + strings.Repeat("a", 8<<20) + `"}`), 2 * maxToken, "longer than"},
		{"huge number", []byte(`{"group":"g","node":"n","generation":` + strings.Repeat("9", 8<<20) + `}`), 2 * maxToken, "longer than"},
		{"huge unknown string", []byte(`{"x":"` + strings.Repeat(`\"`, 4<<20) + `"}`), 2 * maxToken, "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cr := &countingReader{r: bytes.NewReader(tc.body)}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := DecodeReport(cr)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrBadReport) || !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("err %v, want ErrBadReport saying %q", err, tc.contains)
			}
			if cr.n > tc.maxRead {
				t.Errorf("read %d of %d bytes before refusing, want at most %d", cr.n, len(tc.body), tc.maxRead)
			}
			// The whole 8 MiB body decoded with json.Unmarshal allocates
			// ~300 MB; the checking walk allocates short-lived tokens for
			// what it read and keeps only those bytes.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 20<<20 {
				t.Errorf("allocated %d MiB for a refused report", alloc>>20)
			}
			t.Logf("read %d bytes, allocated %.1f MiB", cr.n, float64(after.TotalAlloc-before.TotalAlloc)/(1<<20))
		})
	}
}

// TestDecodeReportAllocs pins the allocations of a legitimate small report.
func TestDecodeReportAllocs(t *testing.T) {
	b, _ := json.Marshal(Report{Group: "branch-a", Node: "a-1", Mode: "proxy", URL: "http://a-1:20080", Generation: 3, Ready: true,
		Upstream: []string{"http://hq-1:20080"}, Cache: &CacheStats{Objects: 2}, Agents: 7, Sent: time.Now()})
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := DecodeReport(bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	})
	// Token() boxes every token and the report is walked twice (check,
	// then build): ~400 allocations for a relay's report; kept from
	// growing.
	if allocs > 500 {
		t.Errorf("%.0f allocations for a %d-byte report", allocs, len(b))
	}
	t.Logf("%.0f allocations for a %d-byte report", allocs, len(b))
}
