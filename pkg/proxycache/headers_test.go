package proxycache

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/store"
)

func TestKeepHeaders(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	h := http.Header{
		"Connection": {"X-Hop, close"}, "X-Hop": {"secret"}, "Keep-Alive": {"timeout=5"}, "Transfer-Encoding": {"chunked"},
		"Set-Cookie": {"a=b"}, "Content-Length": {"12"}, "X-Relay-Cache": {"HIT"},
		"X-Custom": {"one", "two"}, "Etag": {`W/"e"`}, "Cache-Control": {"max-age=60"},
	}
	m := keepHeaders(h, 410, now)
	want := map[string]string{"X-Custom": "one, two", "Etag": `W/"e"`, "Cache-Control": "max-age=60",
		"Date": now.Format(http.TimeFormat), statusField: "410"}
	if fmt.Sprint(m) != fmt.Sprint(want) {
		t.Fatalf("kept %v\nwant %v", m, want)
	}
	if entryStatus(m) != 410 || entryStatus(map[string]string{}) != 200 {
		t.Fatal("status not kept")
	}
}

func TestKeepHeadersBounded(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	for i := range 200 {
		h.Set(fmt.Sprintf("X-F%03d", i), "v")
	}
	if m := keepHeaders(h, 200, time.Now()); len(m) > MaxStoredFields+1 { // + Date
		t.Fatalf("%d fields kept, bound %d", len(m), MaxStoredFields)
	}
	h = http.Header{"X-Big": {strings.Repeat("x", MaxStoredHeaderBytes)}, "X-Small": {"s"}}
	m := keepHeaders(h, 200, time.Now())
	if _, ok := m["X-Big"]; ok || m["X-Small"] != "s" {
		t.Fatalf("kept %d fields: a field over the byte bound kept, or a small one dropped", len(m))
	}
	// A 304 cannot grow a stored response past the bounds either.
	refresh(m, http.Header{"X-Big": {strings.Repeat("y", MaxStoredHeaderBytes)}, "X-New": {"n"}}, time.Now())
	if _, ok := m["X-Big"]; ok || m["X-New"] != "n" {
		t.Fatal("refresh broke the bound or dropped a small field")
	}
}

func TestRefresh(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m := map[string]string{"X-Version": "1", "Age": "50", "Etag": `"a"`, "Content-Type": "text/plain", "Date": "old"}
	refresh(m, http.Header{"X-Version": {"2"}, "Connection": {"X-Hop"}, "X-Hop": {"h"}, "Content-Length": {"0"}}, now)
	want := map[string]string{"X-Version": "2", "Etag": `"a"`, "Content-Type": "text/plain", "Date": now.Format(http.TimeFormat)}
	if fmt.Sprint(m) != fmt.Sprint(want) {
		t.Fatalf("refreshed %v\nwant %v", m, want)
	}
}

func TestParseAge(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]time.Duration{
		"": 0, "0": 0, "60": time.Minute, "7200, 0": 2 * time.Hour, " 10 ": 10 * time.Second,
		// Invalid values are ignored (RFC 9111 §5.1), parameters dropped.
		"abc": 0, "-7200": 0, "7200.0": 0, "+5": 0, "7200;foo=bar": 2 * time.Hour,
	} {
		if got := parseAge(v); got != want {
			t.Errorf("Age %q: %v, want %v", v, got, want)
		}
	}
}

func TestDirectives(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]string{
		`max-age=60`:                                 "map[max-age:60]",
		`extension="max-age=100", max-age=1`:         "map[extension:max-age=100 max-age:1]",
		`max-age=1, extension="a, max-age=100"`:      "map[extension:a, max-age=100 max-age:1]",
		`max-age=1800, max-age=1`:                    "map[max-age:1800]", // the first counts
		`Max-Age="3600", No-Cache`:                   "map[max-age:3600 no-cache:]",
		`private="Set-Cookie", max-age=5, no-store,`: "map[max-age:5 no-store: private:Set-Cookie]",
	} {
		if got := fmt.Sprint(directives(v)); got != want {
			t.Errorf("%s: %s, want %s", v, got, want)
		}
	}
}

func TestStorable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		cc     string
		auth   bool
		want   bool
	}{
		{200, "", false, true}, {404, "", false, true}, {301, "", false, true},
		{302, "", false, false}, {302, "max-age=60", false, true}, {500, "", false, false}, {403, "public", false, true},
		{200, "no-store", false, false}, {200, "private", false, false},
		{200, "max-age=60", true, false}, {200, "public, max-age=60", true, true}, {200, "s-maxage=60", true, true},
		{200, "must-revalidate", true, true}, {206, "max-age=60", false, false},
	} {
		h := http.Header{}
		if tc.cc != "" {
			h.Set("Cache-Control", tc.cc)
		}
		if got := storable(tc.status, h, tc.auth); got != tc.want {
			t.Errorf("%d %q auth=%v: storable %v, want %v", tc.status, tc.cc, tc.auth, got, tc.want)
		}
	}
	if storable(200, http.Header{"Vary": {"*"}}, false) {
		t.Error("Vary: * stored")
	}
}

func TestRequestForwardAndVary(t *testing.T) {
	t.Parallel()
	rq := requestFrom(WithRequest(context.Background(), http.Header{
		"User-Agent": {"apt"}, "Connection": {"X-Drop"}, "X-Drop": {"1"}, "X-Relay-Path": {"g"}, "If-None-Match": {`"c"`},
		"Range": {"bytes=0-1"}, "Accept-Language": {"en ,  fr", "de"}, "Cache-Control": {"max-age=0"},
	}))
	fw := rq.forward()
	if fw.Get("User-Agent") != "apt" || fw.Get("Cache-Control") != "max-age=0" || len(fw) != 3 {
		t.Fatalf("forwarded %v, want User-Agent, Accept-Language and Cache-Control", fw)
	}
	if !rq.hasMaxAge || rq.maxAge != 0 {
		t.Fatal("max-age=0 not parsed")
	}
	if v := varyValue(rq.h, "Accept-Language"); v != "en,fr,de" {
		t.Fatalf("normalised %q", v)
	}
	pragma := requestFrom(WithRequest(context.Background(), http.Header{"Pragma": {"no-cache"}}))
	both := requestFrom(WithRequest(context.Background(), http.Header{"Pragma": {"no-cache"}, "Cache-Control": {"max-stale"}}))
	if !pragma.noCache || both.noCache || !both.hasMaxStale || both.maxStale != maxAge {
		t.Fatal("Pragma: no-cache counts only without Cache-Control; max-stale without a value is any staleness")
	}
}

// TestHitETagIsCoherent: a plain object's ETag is the origin's on the miss
// and on every hit; a listed one's is its digest on both (catalog_test
// checks the fill side).
func TestHitETagIsCoherent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, DefaultConfig(), 0)
	body := randomBytes(2000, 3)
	f.up.set("/e", &upObject{body: body, header: http.Header{"Cache-Control": {"max-age=60"}, "Etag": {`"orig-etag-1"`}}})
	for _, want := range []string{object.Miss, object.Hit} {
		obj, err := f.cache.Get(context.Background(), "e")
		if err != nil {
			t.Fatal(err)
		}
		obj.Close()
		if obj.ETag != `"orig-etag-1"` || obj.Header.Get("Etag") != `"orig-etag-1"` {
			t.Fatalf("%s: ETag %q (header %q), want the origin's", want, obj.ETag, obj.Header.Get("Etag"))
		}
		settled(t, f.cache, "e")
	}
	e, err := f.store.Get("e")
	if err != nil {
		t.Fatal(err)
	}
	if hi := f.cache.info("e", &e, true); hi.etag != e.Digest.ETag() || hi.header.Get("Etag") != "" {
		t.Fatalf("listed: ETag %q, header %v; want the digest alone", hi.etag, hi.header)
	}
}

// TestIndexBytesPerObject measures what the kept headers cost in the index
// for a typical package-mirror response: the size of the entry as stored.
func TestIndexBytesPerObject(t *testing.T) {
	t.Parallel()
	now := time.Now()
	h := http.Header{
		"Date": {now.UTC().Format(http.TimeFormat)}, "Server": {"Apache"}, "Last-Modified": {now.Add(-time.Hour).UTC().Format(http.TimeFormat)},
		"Etag": {`"5e1c-62a3d9b5c7a40"`}, "Accept-Ranges": {"bytes"}, "Content-Length": {"24092"},
		"Content-Type": {"application/vnd.debian.binary-package"}, "Connection": {"Keep-Alive"}, "Keep-Alive": {"timeout=5, max=100"},
	}
	e := store.Entry{Digest: digest.FromBytes([]byte("x")), Size: 24092, Requested: now, Stored: now, Header: keepHeaders(h, 200, now)}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := json.Marshal(e.Header)
	t.Logf("index entry %d bytes, of which headers %d", len(b), len(hb))
	if len(hb) > 400 {
		t.Fatalf("headers of a typical response take %d bytes in the index, want a few hundred", len(hb))
	}
}

func TestVaryKeepBounded(t *testing.T) {
	t.Parallel()
	req := http.Header{"Accept-Language": {"en"}, "X-Big": {strings.Repeat("b", maxVaryBytes)}}
	ok := map[string]string{"Vary": "accept-language, Accept-Encoding"}
	if !varyKeep(ok, req) || ok[varyPrefix+"Accept-Language"] != "en" || ok[varyPrefix+"Accept-Encoding"] != "" {
		t.Fatalf("kept %v", ok)
	}
	if varyKeep(map[string]string{"Vary": "X-Big"}, req) {
		t.Fatal("a variant kept a request value over the byte bound")
	}
	if varyKeep(map[string]string{"Vary": "a,b,c,d,e,f,g,h,i"}, req) {
		t.Fatal("a variant kept more request fields than the bound")
	}
}

// TestVariantsBounded: variants of a key are stored side by side, each
// served to its own request values, at most MaxVariants of them.
func TestVariantsBounded(t *testing.T) {
	t.Parallel()
	f := newFixture(t, DefaultConfig(), 0)
	f.up.set("/v", &upObject{body: []byte("v"), header: http.Header{"Cache-Control": {"max-age=60"}, "Vary": {"Accept-Language"}}})
	getAs := func(lang string) string {
		t.Helper()
		ctx := WithRequest(context.Background(), http.Header{"Accept-Language": {lang}})
		obj, err := f.cache.Get(ctx, "v")
		if err != nil {
			t.Fatal(err)
		}
		obj.Close()
		settled(t, f.cache, "v")
		return obj.Cache
	}
	for _, lang := range []string{"a", "b", "a", "b"} {
		getAs(lang)
	}
	if n := f.up.count("/v"); n != 2 {
		t.Fatalf("upstream asked %d times for two variants asked twice each, want 2", n)
	}
	for i := range 10 {
		getAs(fmt.Sprint("l", i))
	}
	n := 0
	_ = f.store.List("v", func(string, store.Entry) bool { n++; return true })
	if n > MaxVariants {
		t.Fatalf("%d variants stored, bound %d", n, MaxVariants)
	}
	if c := getAs("l9"); c != object.Hit {
		t.Fatalf("the newest variant: %s, want a HIT", c)
	}
}
