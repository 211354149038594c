package proxycache

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/object"
)

// TestFreshness runs each RFC 9111 rule through the whole cache against a
// real upstream, with the clock moved instead of slept.
func TestFreshness(t *testing.T) {
	t.Parallel()
	// Dates are relative to base; each case moves them to its fixture's
	// clock (parallel cases may start long after the table is built).
	base := time.Now()
	httpDate := func(d time.Duration) string { return base.Add(d).UTC().Format(http.TimeFormat) }
	for _, tc := range []struct {
		name      string
		cfg       func(*Config)
		header    http.Header
		after     time.Duration
		wantCache string
		wantGets  int
		wantCond  string // a conditional header value the revalidation must carry
	}{
		{name: "max-age fresh", header: http.Header{"Cache-Control": {"max-age=60"}}, after: 30 * time.Second, wantCache: object.Hit, wantGets: 1},
		{name: "max-age stale revalidated by etag", header: http.Header{"Cache-Control": {"max-age=60"}, "Etag": {`"v1"`}}, after: 61 * time.Second, wantCache: object.Revalidated, wantGets: 2, wantCond: `"v1"|`},
		{name: "s-maxage beats max-age", header: http.Header{"Cache-Control": {"max-age=1000, s-maxage=10"}, "Etag": {`"v1"`}}, after: 11 * time.Second, wantCache: object.Revalidated, wantGets: 2},
		{name: "expires fresh", header: http.Header{"Expires": {httpDate(time.Minute)}}, after: 30 * time.Second, wantCache: object.Hit, wantGets: 1},
		{name: "expires stale refetched", header: http.Header{"Expires": {httpDate(time.Minute)}}, after: 90 * time.Second, wantCache: object.Miss, wantGets: 2},
		{name: "invalid expires is stale", header: http.Header{"Expires": {"0"}}, after: 0, wantCache: object.Miss, wantGets: 2},
		{name: "no validators no expiry: never reused", header: http.Header{}, after: 0, wantCache: object.Miss, wantGets: 2},
		{name: "heuristic from last-modified", header: http.Header{"Last-Modified": {httpDate(-10 * 24 * time.Hour)}}, after: 23 * time.Hour, wantCache: object.Hit, wantGets: 1},
		{name: "heuristic capped at 24h", header: http.Header{"Last-Modified": {httpDate(-100 * 24 * time.Hour)}}, after: 25 * time.Hour, wantCache: object.Revalidated, wantGets: 2, wantCond: "|" + httpDate(-100*24*time.Hour)},
		{name: "no-cache revalidates every use", header: http.Header{"Cache-Control": {"max-age=600, no-cache"}, "Etag": {`"n"`}}, after: 0, wantCache: object.Revalidated, wantGets: 2},
		{name: "no-store is not kept", header: http.Header{"Cache-Control": {"max-age=600, no-store"}}, after: 0, wantCache: object.Miss, wantGets: 2},
		{name: "private is not kept", header: http.Header{"Cache-Control": {"private, max-age=600"}}, after: 0, wantCache: object.Miss, wantGets: 2},
		{name: "default ttl for unspecified", cfg: func(c *Config) { c.DefaultTTL = time.Hour }, header: http.Header{}, after: 30 * time.Minute, wantCache: object.Hit, wantGets: 1},
		{name: "default ttl does not beat max-age", cfg: func(c *Config) { c.DefaultTTL = time.Hour }, header: http.Header{"Cache-Control": {"max-age=10"}}, after: 20 * time.Second, wantCache: object.Miss, wantGets: 2},
		// Issue 14 (the conformance suite): an invalid Age is ignored; an
		// Expires that is not a strict HTTP-date is already expired.
		{name: "invalid age ignored", header: http.Header{"Cache-Control": {"max-age=60"}, "Age": {"7200.0"}}, after: 10 * time.Second, wantCache: object.Hit, wantGets: 1},
		{name: "expires with two spaces is invalid", header: http.Header{"Expires": {"Thu, 18  Aug  2050 02:01:18 GMT"}}, after: 0, wantCache: object.Miss, wantGets: 2},
		{name: "expires in lower case is valid", header: http.Header{"Expires": {"Thu, 18 aug 2050 02:01:18 gmt"}}, after: time.Hour, wantCache: object.Hit, wantGets: 1},
		// CDN-Cache-Control (RFC 9213) replaces Cache-Control and Expires.
		{name: "cdn max-age beats cc no-store", header: http.Header{"Cache-Control": {"no-store"}, "Cdn-Cache-Control": {"max-age=600"}}, after: time.Minute, wantCache: object.Hit, wantGets: 1},
		{name: "cdn short max-age beats cc long", header: http.Header{"Cache-Control": {"max-age=3600"}, "Cdn-Cache-Control": {"max-age=10"}}, after: time.Minute, wantCache: object.Miss, wantGets: 2},
		{name: "cdn private", header: http.Header{"Cache-Control": {"max-age=3600"}, "Cdn-Cache-Control": {"private"}}, after: 0, wantCache: object.Miss, wantGets: 2},
		{name: "cdn no-cache", header: http.Header{"Cache-Control": {"max-age=3600"}, "Cdn-Cache-Control": {"no-cache"}, "Expires": {httpDate(time.Hour)}}, after: 0, wantCache: object.Miss, wantGets: 2},
		{name: "cdn no-store", header: http.Header{"Cache-Control": {"max-age=3600"}, "Cdn-Cache-Control": {"no-store"}}, after: 0, wantCache: object.Miss, wantGets: 2},
		{name: "cdn max-age=0 beats expires", header: http.Header{"Cdn-Cache-Control": {"max-age=0"}, "Expires": {httpDate(time.Hour)}}, after: 0, wantCache: object.Miss, wantGets: 2},
		{name: "invalid cdn ignored", header: http.Header{"Cache-Control": {"no-store"}, "Cdn-Cache-Control": {`max-age="600"`}}, after: 0, wantCache: object.Miss, wantGets: 2},
		{name: "age header counts", header: http.Header{"Cache-Control": {"max-age=60"}, "Age": {"50"}}, after: 20 * time.Second, wantCache: object.Miss, wantGets: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			f := newFixture(t, cfg, 0)
			header, wantCond := rebase(tc.header, tc.wantCond, f.clock.Now().Sub(base))
			body := randomBytes(10000, 7)
			f.up.set("/o", &upObject{body: body, header: header})
			mustGet(t, f.cache, "o", body, object.Miss)
			f.clock.Advance(tc.after)
			mustGet(t, f.cache, "o", body, tc.wantCache)
			if n := f.up.count("/o"); n != tc.wantGets {
				t.Fatalf("upstream GETs = %d, want %d", n, tc.wantGets)
			}
			if wantCond != "" {
				f.up.mu.Lock()
				conds := f.up.conds["/o"]
				f.up.mu.Unlock()
				if len(conds) == 0 || conds[len(conds)-1] != wantCond {
					t.Fatalf("conditional headers = %q, want %q", conds, wantCond)
				}
			}
		})
	}
}

func TestRevalidationRefreshesStoredEntry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, DefaultConfig(), 0)
	body := randomBytes(5000, 8)
	f.up.set("/r", &upObject{body: body, header: http.Header{"Cache-Control": {"max-age=60"}, "Etag": {`"r1"`}}})
	mustGet(t, f.cache, "r", body, object.Miss)
	f.clock.Advance(2 * time.Minute)
	mustGet(t, f.cache, "r", body, object.Revalidated) // 304
	mustGet(t, f.cache, "r", body, object.Hit)         // fresh again: no request
	if n := f.up.count("/r"); n != 2 {
		t.Fatalf("upstream GETs = %d, want 2 (one fill, one revalidation)", n)
	}
	if s := f.cache.Stats(); s.Revalidated != 1 {
		t.Fatalf("revalidated = %d, want 1", s.Revalidated)
	}
}

func TestStaleWhenUpstreamDown(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		cc        string
		wantStale bool
	}{
		{"served stale", "max-age=1", true},
		{"must-revalidate forbids stale", "max-age=1, must-revalidate", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, DefaultConfig(), 0)
			body := randomBytes(3000, 9)
			f.up.set("/s", &upObject{body: body, header: http.Header{"Cache-Control": {tc.cc}}})
			mustGet(t, f.cache, "s", body, object.Miss)
			f.clock.Advance(5 * time.Second)
			f.up.set("/s", &upObject{down: true})
			if tc.wantStale {
				got, cache, err := get(t, f.cache, "s")
				if err != nil || cache != object.Stale || string(got) != string(body) {
					t.Fatalf("got %d bytes, cache %q, err %v; want the stale object", len(got), cache, err)
				}
				return
			}
			// Not stale: the upstream's own 503 reaches the client.
			obj, err := f.cache.Get(context.Background(), "s")
			if err != nil {
				t.Fatalf("err = %v, want the upstream's 503", err)
			}
			obj.Close()
			if obj.Status != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want the upstream's 503", obj.Status)
			}
		})
	}
}

func TestGoneUpstreamDropsStoredObject(t *testing.T) {
	t.Parallel()
	f := newFixture(t, DefaultConfig(), 0)
	body := randomBytes(3000, 10)
	f.up.set("/g", &upObject{body: body, header: http.Header{"Cache-Control": {"max-age=1"}, "Etag": {`"g"`}}})
	mustGet(t, f.cache, "g", body, object.Miss)
	f.clock.Advance(2 * time.Second)
	f.up.mu.Lock()
	delete(f.up.objects, "/g")
	f.up.mu.Unlock()
	obj, err := f.cache.Get(context.Background(), "g")
	if err != nil {
		t.Fatal(err)
	}
	obj.Close()
	if obj.Status != http.StatusNotFound {
		t.Fatalf("status %d, want the upstream's 404", obj.Status)
	}
	eventually(t, 10*time.Second, func() bool {
		e, err := f.store.Get("g")
		return err == nil && entryStatus(e.Header) == http.StatusNotFound
	})
}

// rebase moves the dates httpDate made in a test case's header (Expires,
// Last-Modified)
// and its expected conditional ("etag|date") by shift, whole seconds.
func rebase(h http.Header, cond string, shift time.Duration) (http.Header, string) {
	shift = shift.Truncate(time.Second)
	move := func(v string) string {
		t, err := http.ParseTime(v)
		if err != nil || t.UTC().Format(http.TimeFormat) != v {
			return v // not one of the table's dates: a case of its own
		}
		return t.Add(shift).UTC().Format(http.TimeFormat)
	}
	h = h.Clone()
	for _, k := range []string{"Expires", "Last-Modified"} {
		if v := h.Get(k); v != "" {
			h.Set(k, move(v))
		}
	}
	if etag, date, ok := strings.Cut(cond, "|"); ok && date != "" {
		cond = etag + "|" + move(date)
	}
	return h, cond
}
