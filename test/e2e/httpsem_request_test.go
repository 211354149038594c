package e2e

// Issue 14: what a relay does with the client's request (query string,
// Vary, Cache-Control and Pragma, forwarded headers, Authorization),
// against a real origin and a real relayd.

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestHTTPSemQuery: the query string is part of the cache key and of the
// upstream request; under an --ignore-query prefix it is dropped from
// both.
func TestHTTPSemQuery(t *testing.T) {
	t.Parallel()
	o := startSemOrigin(t)
	echo := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		_, _ = w.Write([]byte("query " + r.URL.RawQuery))
	}
	o.handle("/q/b", echo)
	o.handle("/pool/b", echo)
	relay := startSemRelay(t, o, "--ignore-query", "pool/")
	c := newClient()
	for _, q := range []string{"v=1", "v=2", "v=1"} {
		r := get(t, c, http.MethodGet, relay.URL+"/q/b?"+q)
		wantResp(t, r, 200, "query "+q, "", "GET /q/b?"+q)
	}
	if n := len(o.requests("/q/b")); n != 2 {
		t.Fatalf("origin asked %d times for two queries (one repeated), want 2", n)
	}
	if uri := o.requests("/q/b")[1].uri; uri != "/q/b?v=2" {
		t.Fatalf("origin asked for %q, want /q/b?v=2", uri)
	}
	wantResp(t, get(t, c, http.MethodGet, relay.URL+"/pool/b?v=1"), 200, "query ", "MISS", "ignored query, first")
	wantResp(t, get(t, c, http.MethodGet, relay.URL+"/pool/b?v=2"), 200, "query ", "HIT", "ignored query, second")
}

// TestHTTPSemVary: a response that varies on Accept-Language is served
// only to requests with the same (normalised) value, several variants
// side by side; Vary: * never matches.
func TestHTTPSemVary(t *testing.T) {
	t.Parallel()
	o := startSemOrigin(t)
	o.handle("/v/lang", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Vary", "Accept-Language")
		_, _ = w.Write([]byte("lang " + r.Header.Get("Accept-Language")))
	})
	o.handle("/v/star", static("star", "Cache-Control", "max-age=3600", "Vary", "*"))
	relay := startSemRelay(t, o)
	c := newClient()
	steps := []struct{ lang, body, cache string }{
		{"en,fr", "lang en,fr", "MISS"},
		{"en, fr", "lang en,fr", "HIT"}, // whitespace in a list is not a difference
		{"de", "lang de", "MISS"},
		{"de", "lang de", "HIT"},
		{"en,fr", "lang en,fr", "HIT"}, // both variants are kept
	}
	for i, s := range steps {
		r := get(t, c, http.MethodGet, relay.URL+"/v/lang", "Accept-Language", s.lang)
		wantResp(t, r, 200, s.body, s.cache, "step "+strconv.Itoa(i+1)+" Accept-Language "+s.lang)
	}
	for i := range 2 {
		if r := get(t, c, http.MethodGet, relay.URL+"/v/star"); r.cache() == "HIT" {
			t.Fatalf("Vary: * GET %d served as a HIT", i+1)
		}
	}
}

// TestHTTPSemRequestDirectives: request Cache-Control and Pragma are
// honoured: max-age=0, no-cache and Pragma: no-cache revalidate with a
// conditional GET; only-if-cached answers 504 for what is not stored;
// min-fresh refuses a response too close to its expiry; max-stale
// accepts a stale one.
func TestHTTPSemRequestDirectives(t *testing.T) {
	t.Parallel()
	o := startSemOrigin(t)
	o.handle("/d/x", static("x", "Cache-Control", "max-age=3600", "Etag", `"x1"`))
	o.handle("/d/stale", static("stale", "Cache-Control", "max-age=3600", "Age", "3700", "Etag", `"s1"`))
	relay := startSemRelay(t, o)
	c := newClient()
	wantResp(t, get(t, c, http.MethodGet, relay.URL+"/d/x"), 200, "x", "MISS", "first")
	wantResp(t, get(t, c, http.MethodGet, relay.URL+"/d/x"), 200, "x", "HIT", "second")
	for _, h := range [][2]string{{"Cache-Control", "max-age=0"}, {"Cache-Control", "no-cache"}, {"Pragma", "no-cache"}} {
		before := len(o.requests("/d/x"))
		r := get(t, c, http.MethodGet, relay.URL+"/d/x", h[0], h[1])
		wantResp(t, r, 200, "x", "REVALIDATED", h[0]+": "+h[1])
		seen := o.requests("/d/x")
		if len(seen) != before+1 || seen[len(seen)-1].header.Get("If-None-Match") != `"x1"` {
			t.Fatalf("%s: %s: origin not asked conditionally (%d requests)", h[0], h[1], len(seen)-before)
		}
	}
	wantResp(t, get(t, c, http.MethodGet, relay.URL+"/d/x", "Cache-Control", "only-if-cached"), 200, "x", "HIT", "only-if-cached, stored")
	if r := get(t, c, http.MethodGet, relay.URL+"/d/none", "Cache-Control", "only-if-cached"); r.status != http.StatusGatewayTimeout {
		t.Fatalf("only-if-cached, not stored: status %d, want 504", r.status)
	}
	if n := len(o.requests("/d/none")); n != 0 {
		t.Fatalf("only-if-cached went upstream %d times", n)
	}
	if r := get(t, c, http.MethodGet, relay.URL+"/d/x", "Cache-Control", "min-fresh=7200"); r.cache() == "HIT" {
		t.Fatal("min-fresh=7200 served a response fresh for less than an hour")
	}
	get(t, c, http.MethodGet, relay.URL+"/d/stale")
	n := len(o.requests("/d/stale"))
	wantResp(t, get(t, c, http.MethodGet, relay.URL+"/d/stale", "Cache-Control", "max-stale=600"), 200, "stale", "HIT", "max-stale=600")
	if len(o.requests("/d/stale")) != n {
		t.Fatal("max-stale went upstream for a response stale by 100 s")
	}
	if r := get(t, c, http.MethodGet, relay.URL+"/d/stale", "Cache-Control", "max-stale=10"); r.cache() == "HIT" {
		t.Fatal("max-stale=10 served a response stale by 100 s")
	}
}

// TestHTTPSemForwardedHeaders: the client's request headers reach the
// origin except relayd's own; a request with Authorization is not served
// from the store unless the response allows it (public).
func TestHTTPSemForwardedHeaders(t *testing.T) {
	t.Parallel()
	o := startSemOrigin(t)
	o.handle("/f/echo", static("echo", "Cache-Control", "max-age=3600"))
	o.handle("/f/private", static("private", "Cache-Control", "max-age=3600"))
	o.handle("/f/public", static("public", "Cache-Control", "public, max-age=3600"))
	relay := startSemRelay(t, o)
	c := newClient()
	get(t, c, http.MethodGet, relay.URL+"/f/echo", "User-Agent", "Debian APT-HTTP/1.3 (2.6.1)", "Accept-Language", "de",
		"X-Mirror-Hint", "fast", "X-Relay-Foo", "mine")
	seen := o.requests("/f/echo")
	if len(seen) != 1 {
		t.Fatalf("origin asked %d times", len(seen))
	}
	h := seen[0].header
	if !strings.HasPrefix(h.Get("User-Agent"), "Debian APT") || h.Get("Accept-Language") != "de" || h.Get("X-Mirror-Hint") != "fast" {
		t.Fatalf("client headers not forwarded: %v", h)
	}
	if h.Get("X-Relay-Foo") != "" {
		t.Fatalf("relayd's own header forwarded: %v", h)
	}

	for path, shared := range map[string]bool{"/f/private": false, "/f/public": true} {
		get(t, c, http.MethodGet, relay.URL+path)
		r := get(t, c, http.MethodGet, relay.URL+path, "Authorization", "Bearer secret")
		if (r.cache() == "HIT") != shared {
			t.Fatalf("%s with Authorization: %s, want a HIT only for a public response", path, r.cache())
		}
		if !shared && o.requests(path)[1].header.Get("Authorization") != "Bearer secret" {
			t.Fatalf("%s: Authorization not forwarded", path)
		}
	}
}
