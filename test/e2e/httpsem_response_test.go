package e2e

// Issue 14: what a relay keeps of the origin's responses (headers,
// validators, statuses, redirects, Age/Expires/Date), against a real
// origin and a real relayd.

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHTTPSemHeadersAndValidators: the origin's end-to-end headers reach
// the client on a miss and on a hit, hop-by-hop and Connection-named ones
// do not; no Content-Type is invented; Date is the origin's and Age is
// sent; the origin's ETag is served as sent and a client's If-None-Match
// is answered against it; a 304 from the origin updates the stored
// headers.
func TestHTTPSemHeadersAndValidators(t *testing.T) {
	t.Parallel()
	o := startSemOrigin(t)
	date := time.Now().Add(-30 * time.Second).UTC().Format(http.TimeFormat)
	o.handle("/h/a", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = nil // none: the relay must not invent one
		h.Set("Date", date)
		h.Set("X-Custom", "one")
		h.Set("Content-Disposition", "attachment; filename=a.deb")
		h.Set("Connection", "X-Hop")
		h.Set("X-Hop", "secret")
		h.Set("Cache-Control", "max-age=3600")
		h.Set("Etag", `"orig-etag-1"`)
		if r.Header.Get("If-None-Match") == `"orig-etag-1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write([]byte("body a"))
	})
	version := 0
	o.handle("/h/b", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Etag", `"b1"`)
		if r.Header.Get("If-None-Match") == `"b1"` {
			version++
			if version == 1 { // the first 304 updates X-Version; the next sends none
				w.Header().Set("X-Version", "2")
			}
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("X-Version", "1")
		_, _ = w.Write([]byte("body b"))
	})
	relay := startSemRelay(t, o)
	c := newClient()

	for i, want := range []string{"MISS", "HIT"} {
		r := get(t, c, http.MethodGet, relay.URL+"/h/a")
		wantResp(t, r, 200, "body a", want, "GET /h/a "+strconv.Itoa(i+1))
		h := r.header
		if h.Get("X-Custom") != "one" || h.Get("Content-Disposition") != "attachment; filename=a.deb" || h.Get("Cache-Control") != "max-age=3600" {
			t.Fatalf("%s: origin headers lost: %v", want, h)
		}
		if h.Get("X-Hop") != "" || strings.Contains(h.Get("Connection"), "X-Hop") {
			t.Fatalf("%s: a Connection-named header reached the client: %v", want, h)
		}
		if _, ok := h["Content-Type"]; ok {
			t.Fatalf("%s: Content-Type %q invented", want, h.Get("Content-Type"))
		}
		if h.Get("Etag") != `"orig-etag-1"` {
			t.Fatalf("%s: ETag %q, want the origin's", want, h.Get("Etag"))
		}
		if h.Get("Date") != date {
			t.Fatalf("%s: Date %q, want the origin's %q", want, h.Get("Date"), date)
		}
		if age, err := strconv.Atoi(h.Get("Age")); err != nil || age < 29 {
			t.Fatalf("%s: Age %q, want at least the 30 s since the origin's Date", want, h.Get("Age"))
		}
	}
	if r := get(t, c, http.MethodGet, relay.URL+"/h/a"); r.header.Get("Repr-Digest") == "" {
		t.Fatalf("hit without Repr-Digest: %v", r.header)
	}
	r := get(t, c, http.MethodGet, relay.URL+"/h/a", "If-None-Match", `"orig-etag-1"`)
	if r.status != http.StatusNotModified {
		t.Fatalf("If-None-Match with the origin's ETag: status %d, want 304", r.status)
	}

	r = get(t, c, http.MethodGet, relay.URL+"/h/b")
	wantResp(t, r, 200, "body b", "MISS", "GET /h/b")
	for i := range 2 {
		r = get(t, c, http.MethodGet, relay.URL+"/h/b")
		wantResp(t, r, 200, "body b", "REVALIDATED", "revalidated /h/b")
		if r.header.Get("X-Version") != "2" {
			t.Fatalf("revalidation %d: X-Version %q, want 2 (the 304's, kept)", i+1, r.header.Get("X-Version"))
		}
	}
}

// TestHTTPSemStatuses: statuses reach the client as the origin sent them,
// with their bodies; a redirect is passed on (not followed, not stored
// without freshness); with --follow-redirects the target is served with
// the redirect's freshness.
func TestHTTPSemStatuses(t *testing.T) {
	t.Parallel()
	o := startSemOrigin(t)
	for _, st := range []int{201, 401, 403, 404, 410, 500, 503} {
		o.handle("/s/"+strconv.Itoa(st), func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Status", strconv.Itoa(st))
			w.WriteHeader(st)
			_, _ = w.Write([]byte("origin says " + strconv.Itoa(st)))
		})
	}
	o.handle("/s/204", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	o.handle("/r/302", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/r/target", http.StatusFound)
	})
	o.handle("/r/target", static("the target", "Cache-Control", "max-age=3600"))
	relay := startSemRelay(t, o)
	c := newClient()
	for _, st := range []int{201, 401, 403, 404, 410, 500, 503} {
		for range 2 {
			r := get(t, c, http.MethodGet, relay.URL+"/s/"+strconv.Itoa(st))
			wantResp(t, r, st, "origin says "+strconv.Itoa(st), "", "GET /s/"+strconv.Itoa(st))
			if r.header.Get("X-Status") != strconv.Itoa(st) {
				t.Fatalf("%d: origin header lost: %v", st, r.header)
			}
		}
	}
	wantResp(t, get(t, c, http.MethodGet, relay.URL+"/s/204"), 204, "", "", "GET /s/204")
	for i := range 2 {
		r := get(t, c, http.MethodGet, relay.URL+"/r/302")
		if r.status != http.StatusFound || r.header.Get("Location") != "/r/target" || r.cache() == "HIT" {
			t.Fatalf("GET %d of a redirect: %d Location %q (%s), want the 302 passed on", i+1, r.status, r.header.Get("Location"), r.cache())
		}
	}
	if n := len(o.requests("/r/target")); n != 0 {
		t.Fatalf("the relay followed the redirect %d times", n)
	}

	follow := startSemRelay(t, o, "--follow-redirects")
	for i := range 2 {
		r := get(t, c, http.MethodGet, follow.URL+"/r/302")
		wantResp(t, r, 200, "the target", "", "--follow-redirects GET "+strconv.Itoa(i+1))
		if r.cache() == "HIT" {
			t.Fatalf("GET %d: a redirect without freshness served as a HIT with its target's freshness", i+1)
		}
	}
}

// TestHTTPSemAgeExpiresDate: Age "7200, 0" is 7200 (the first member), so
// a max-age=3600 response is stale at once; an invalid Expires is already
// expired; both go upstream again instead of being HITs.
func TestHTTPSemAgeExpiresDate(t *testing.T) {
	t.Parallel()
	o := startSemOrigin(t)
	o.handle("/a/listage", static("aged", "Cache-Control", "max-age=3600", "Age", "7200, 0"))
	old := time.Now().Add(-100 * 24 * time.Hour).UTC().Format(http.TimeFormat)
	o.handle("/a/badexpires", static("expires", "Expires", "not a date", "Last-Modified", old))
	o.handle("/a/fresh", static("fresh", "Cache-Control", "max-age=3600", "Age", "60"))
	relay := startSemRelay(t, o)
	c := newClient()
	for _, path := range []string{"/a/listage", "/a/badexpires"} {
		get(t, c, http.MethodGet, relay.URL+path)
		if r := get(t, c, http.MethodGet, relay.URL+path); r.cache() == "HIT" {
			t.Fatalf("%s: stale response served as a HIT", path)
		}
		if n := len(o.requests(path)); n != 2 {
			t.Fatalf("%s: origin asked %d times, want 2", path, n)
		}
	}
	get(t, c, http.MethodGet, relay.URL+"/a/fresh")
	r := get(t, c, http.MethodGet, relay.URL+"/a/fresh")
	if age, _ := strconv.Atoi(r.header.Get("Age")); r.cache() != "HIT" || age < 60 {
		t.Fatalf("fresh object: %s with Age %q, want a HIT aged at least 60", r.cache(), r.header.Get("Age"))
	}
}
