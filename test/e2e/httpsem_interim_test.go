package e2e

// Issue 14: the origin's interim responses (103 Early Hints) reach the
// client waiting for the fill, and are never stored.

import (
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"testing"
)

// getInterims GETs url and returns the final response and the 1xx
// statuses and Link fields received before it.
func getInterims(t testing.TB, c *http.Client, url string) (response, []string) {
	t.Helper()
	var mu sync.Mutex
	var got []string
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, http.StatusText(code)+" "+h.Get("Link"))
			return nil
		}})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	mu.Lock()
	defer mu.Unlock()
	return response{status: resp.StatusCode, header: resp.Header, body: body}, append([]string(nil), got...)
}

// TestHTTPSemInterimPassedOn: a 103 of the origin reaches the client of
// the miss, with its fields; the final response does not carry them, and
// the hit that follows gets no interim response.
func TestHTTPSemInterimPassedOn(t *testing.T) {
	t.Parallel()
	o := startSemOrigin(t)
	o.handle("/i/hints", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Set("Cache-Control", "max-age=3600")
		_, _ = io.WriteString(w, "final")
	})
	relay := startSemRelay(t, o)
	c := newClient()
	r, interims := getInterims(t, c, relay.URL+"/i/hints")
	wantResp(t, r, 200, "final", "MISS", "miss")
	if len(interims) != 1 || interims[0] != "Early Hints </style.css>; rel=preload" {
		t.Fatalf("miss: interim responses %q, want one 103 with the Link", interims)
	}
	if r.header.Get("Link") != "" {
		t.Fatalf("the 103's Link leaked into the final response: %v", r.header)
	}
	r, interims = getInterims(t, c, relay.URL+"/i/hints")
	wantResp(t, r, 200, "final", "HIT", "hit")
	if len(interims) != 0 || r.header.Get("Link") != "" {
		t.Fatalf("hit: interim responses %q, Link %q: a 103 was stored", interims, r.header.Get("Link"))
	}
}
