package e2e

// Issue 14, the apt scenario: an archive's InRelease changes while apt
// clients hold keep-alive connections to the relay. apt asks for InRelease
// with Cache-Control: max-age=0; the relay must never answer that with the
// old file, and however many clients ask at once it revalidates once.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestHTTPSemAptInReleaseChanges(t *testing.T) {
	t.Parallel()
	const path = "/debian/dists/stable/InRelease"
	const clients = 4
	o := startSemOrigin(t)
	var version atomic.Int64
	version.Store(1)
	gate := make(chan struct{})
	lastMod := time.Now().Add(-30 * 24 * time.Hour).UTC().Format(http.TimeFormat)
	o.handle(path, func(w http.ResponseWriter, r *http.Request) {
		v := version.Load()
		if v == 2 && r.Header.Get("If-None-Match") == `"r1"` {
			<-gate // hold the revalidation until every client has joined it
		}
		etag := fmt.Sprintf(`"r%d"`, v)
		w.Header().Set("Etag", etag)
		// Heuristically fresh for a day: only the request directive can
		// make the relay ask again.
		w.Header().Set("Last-Modified", lastMod)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = fmt.Fprintf(w, "InRelease version %d", v)
	})
	relay := startSemRelay(t, o, "--admin", "127.0.0.1:0")
	admin := "http://" + relay.WaitLogAddr(t, "admin listening")
	cs := make([]*http.Client, clients) // each its own keep-alive connections
	for i := range cs {
		cs[i] = newClient()
		r := get(t, cs[i], http.MethodGet, relay.URL+path)
		wantResp(t, r, 200, "InRelease version 1", map[bool]string{true: "MISS", false: "HIT"}[i == 0], fmt.Sprintf("client %d", i))
	}

	version.Store(2) // the archive is updated
	asked := len(o.requests(path))
	base := coalesced(t, admin)
	var wg sync.WaitGroup
	got := make([]response, clients)
	errs := make([]error, clients)
	for i := range cs {
		wg.Go(func() {
			got[i], errs[i] = tryGet(cs[i], http.MethodGet, relay.URL+path, "Cache-Control", "max-age=0")
		})
	}
	eventually(t, 10*time.Second, "every max-age=0 request to join one revalidation", func() error {
		if n := coalesced(t, admin) - base; n != clients-1 {
			return fmt.Errorf("%d requests joined the revalidation, want %d", n, clients-1)
		}
		return nil
	})
	close(gate)
	wg.Wait()
	for i := range got {
		if errs[i] != nil {
			t.Fatalf("client %d: %v", i, errs[i])
		}
		wantResp(t, got[i], 200, "InRelease version 2", "", fmt.Sprintf("client %d, max-age=0 after the change", i))
	}
	if n := len(o.requests(path)) - asked; n != 1 {
		t.Fatalf("origin asked %d times for %d max-age=0 requests at once, want 1", n, clients)
	}
	for i := range cs {
		wantResp(t, get(t, cs[i], http.MethodGet, relay.URL+path), 200, "InRelease version 2", "HIT", fmt.Sprintf("client %d, plain GET", i))
		wantResp(t, get(t, cs[i], http.MethodGet, relay.URL+path, "Cache-Control", "max-age=0"), 200, "InRelease version 2", "REVALIDATED",
			fmt.Sprintf("client %d, max-age=0 again", i))
	}
}

// coalesced reads the relay's count of requests that joined a fill in
// flight.
func coalesced(t testing.TB, admin string) int64 {
	t.Helper()
	var st struct {
		Cache struct {
			Coalesced int64 `json:"coalesced"`
		} `json:"cache"`
	}
	r := get(t, newClient(), http.MethodGet, admin+"/v1/status")
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatalf("/v1/status: %v", err)
	}
	return st.Cache.Coalesced
}
