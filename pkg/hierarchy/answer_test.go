package hierarchy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FetchAnswer passes on a 5xx every upstream sent, with its whole body
// (a 503's first KiB, read to tell a relay's generation_behind, put
// back), where Fetch fails; a query in the key reaches the upstream, and
// a redirect is passed on, not followed, unless FollowRedirects.
func TestFetchAnswerQueryAndRedirects(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("overloaded ", 300) // over the 1 KiB isBehind reads
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/busy":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, long)
		case "/q":
			_, _ = io.WriteString(w, r.URL.RawQuery)
		case "/moved":
			w.Header().Set("Cache-Control", "max-age=5")
			http.Redirect(w, r, "/target", http.StatusFound)
		case "/target":
			w.Header().Set("Cache-Control", "max-age=86400")
			_, _ = io.WriteString(w, "target")
		}
	}))
	t.Cleanup(srv.Close)
	cfg := DefaultConfig()
	cfg.Upstreams = []string{srv.URL, srv.URL}
	c := newClient(t, cfg)
	ctx := context.Background()
	if _, err := c.Fetch(ctx, "busy", http.Header{}); err == nil {
		t.Fatal("Fetch of a 503 did not fail")
	}
	resp, err := c.FetchAnswer(ctx, "busy", http.Header{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || string(b) != long {
		t.Fatalf("FetchAnswer: %d with %d bytes, want the 503 and its %d bytes", resp.StatusCode, len(b), len(long))
	}
	read := func(c *Client, key string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Fetch(ctx, key, http.Header{})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if _, body := read(c, "q?a=1&b=%20"); body != "a=1&b=%20" {
		t.Fatalf("query reached the upstream as %q", body)
	}
	if resp, _ := read(c, "moved"); resp.StatusCode != http.StatusFound {
		t.Fatalf("redirect: status %d, want the 302 passed on", resp.StatusCode)
	}
	cfg.FollowRedirects = true
	if resp, body := read(newClient(t, cfg), "moved"); body != "target" || resp.Header.Get("Cache-Control") != "max-age=5" {
		t.Fatalf("followed: %q with Cache-Control %q, want the target with the redirect's freshness", body, resp.Header.Get("Cache-Control"))
	}
}
