package e2e

// Issue 14: requests of other methods than GET and HEAD on a plain proxy
// with --forward-methods go to the origin (never stored) and invalidate
// what they change (RFC 9111 §4.4); without the flag, and for the relay
// API's paths, they are 405.

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// send performs one request with a body.
func send(t testing.TB, c *http.Client, method, url, body string, hdr ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// TestHTTPSemForwardMethods: POST, PUT, DELETE and an unknown method reach
// the origin with their body and fields and come back with the origin's
// status, fields and body; a 2xx invalidates the stored response of the
// URL and of its same-host Location and Content-Location; a 5xx
// invalidates nothing; a body over --forward-body-max is 413; /-/ paths
// are never forwarded.
func TestHTTPSemForwardMethods(t *testing.T) {
	t.Parallel()
	o := startSemOrigin(t)
	version := map[string]int{}
	var got []string // method, body and If-Match of each unsafe request
	for _, p := range []string{"/f/doc", "/f/loc", "/f/cl"} {
		o.handle(p, func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet {
				w.Header().Set("Cache-Control", "max-age=3600")
				_, _ = io.WriteString(w, p+" v"+string(rune('0'+version[p])))
				return
			}
			b, _ := io.ReadAll(r.Body)
			got = append(got, r.Method+" "+string(b)+" "+r.Header.Get("If-Match"))
			if r.Header.Get("X-Fail") != "" {
				http.Error(w, "broken", http.StatusInternalServerError)
				return
			}
			version[p]++
			w.Header().Set("Location", "/f/loc")
			w.Header().Set("Content-Location", "http://"+r.Host+"/f/cl")
			w.Header().Set("X-Origin", "yes")
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, "created")
		})
	}
	relay := startSemRelay(t, o, "--forward-methods", "--forward-body-max", "16")
	c := newClient()
	warm := func(what string) {
		t.Helper()
		for _, p := range []string{"/f/doc", "/f/loc", "/f/cl"} {
			get(t, c, http.MethodGet, relay.URL+p)
			wantResp(t, get(t, c, http.MethodGet, relay.URL+p), 200, p+" v"+string(rune('0'+version[p])), "HIT", what+": "+p)
		}
	}
	warm("before")

	// A failed POST invalidates nothing.
	r := send(t, c, http.MethodPost, relay.URL+"/f/doc", "abc", "X-Fail", "1")
	wantResp(t, r, 500, "broken\n", "", "failed POST")
	wantResp(t, get(t, c, http.MethodGet, relay.URL+"/f/doc"), 200, "/f/doc v0", "HIT", "after a failed POST")

	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, "M-SEARCH"} {
		r := send(t, c, m, relay.URL+"/f/doc", "abc", "If-Match", `"x"`)
		wantResp(t, r, http.StatusCreated, "created", "", m)
		if r.header.Get("X-Origin") != "yes" || r.header.Get("Location") != "/f/loc" {
			t.Fatalf("%s: the origin's fields were not passed on: %v", m, r.header)
		}
		// The URL, its Location and its Content-Location are asked again.
		for _, p := range []string{"/f/doc", "/f/loc", "/f/cl"} {
			wantResp(t, get(t, c, http.MethodGet, relay.URL+p), 200, p+" v"+string(rune('0'+version[p])), "MISS", m+": "+p)
		}
		warm(m)
	}
	if want := "POST abc \"x\""; len(got) != 5 || got[1] != want {
		t.Fatalf("the origin saw %q, want 5 requests, the second %q", got, want)
	}

	// Bounded body: 413, the origin never asked.
	r = send(t, c, http.MethodPut, relay.URL+"/f/doc", strings.Repeat("x", 17))
	if r.status != http.StatusRequestEntityTooLarge || !strings.Contains(string(r.body), "body_too_large") {
		t.Fatalf("PUT of 17 bytes over a 16-byte bound: %d %s", r.status, r.body)
	}
	if len(got) != 5 {
		t.Fatalf("the origin saw a body over the bound: %q", got)
	}
	// The relay API is never forwarded.
	if r := send(t, c, http.MethodPut, relay.URL+"/-/healthz", "x"); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("PUT /-/healthz: %d %s", r.status, r.body)
	}
	if r := send(t, c, http.MethodPut, relay.URL+"/-%2Fhealthz", "x"); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("PUT /-%%2Fhealthz: %d %s", r.status, r.body)
	}
}

// TestHTTPSemForwardOff: without --forward-methods other methods are 405
// and the origin never sees them.
func TestHTTPSemForwardOff(t *testing.T) {
	t.Parallel()
	o := startSemOrigin(t)
	o.handle("/f/x", static("x", "Cache-Control", "max-age=3600"))
	relay := startSemRelay(t, o)
	c := newClient()
	r := send(t, c, http.MethodPost, relay.URL+"/f/x", "abc")
	if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST without --forward-methods: %d Allow %q", r.status, r.header.Get("Allow"))
	}
	if n := len(o.requests("/f/x")); n != 0 {
		t.Fatalf("the origin saw %d requests", n)
	}
}
