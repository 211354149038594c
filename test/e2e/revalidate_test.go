package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestRevalidatedLabel: an object its origin wants revalidated on every
// use (no-cache, a strong ETag) is a MISS, then REVALIDATED — the origin
// answered 304 and the relay sent its stored bytes — in X-Relay-Cache and
// in the relay's access log line; it is never called a HIT.
func TestRevalidatedLabel(t *testing.T) {
	t.Parallel()
	const path = "/repo/InRelease"
	data := makeData(93, 50_000)
	var gets, conditional atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	origin := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			http.NotFound(w, r) // the relay API probes (/-/relays, …)
			return
		}
		gets.Add(1)
		if r.Header.Get("If-None-Match") != "" {
			conditional.Add(1)
		}
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("ETag", `"r1"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data)) // 304 when If-None-Match matches
	})}
	go func() { _ = origin.Serve(ln) }()
	t.Cleanup(func() { _ = origin.Close() })

	relay := startRelayd(t, "--mode", "proxy", "--upstream", "http://"+ln.Addr().String(), "--data-dir", t.TempDir())
	c := newClient()
	for i, want := range []string{"MISS", "REVALIDATED", "REVALIDATED"} {
		r := get(t, c, http.MethodGet, relay.URL+path)
		wantObject(t, r, data, fmt.Sprintf("GET %d", i+1))
		if r.cache() != want {
			t.Fatalf("GET %d: X-Relay-Cache %q, want %s", i+1, r.cache(), want)
		}
	}
	if g, cg := gets.Load(), conditional.Load(); g != 3 || cg != 2 {
		t.Fatalf("origin got %d GETs, %d of them conditional; want 3 and 2 (one fill, two revalidations)", g, cg)
	}

	// The access log says the same, one line per request.
	eventually(t, 10*time.Second, "the access log to label the revalidations", func() error {
		labels := map[any]int{}
		for _, l := range logLines(relay.Log()) {
			if l["message"] == "request" && l["path"] == path {
				labels[l["cache"]]++
			}
		}
		if labels["HIT"] > 0 {
			return stopErr{Err: fmt.Errorf("access log labels %v: a revalidated response logged as HIT", labels)}
		}
		if labels["MISS"] != 1 || labels["REVALIDATED"] != 2 {
			return fmt.Errorf("access log labels %v, want 1 MISS and 2 REVALIDATED", labels)
		}
		return nil
	})
}
