package ui_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/relayd/relayd/internal/proctest"
	"github.com/relayd/relayd/pkg/admin"
	"github.com/relayd/relayd/pkg/ui"
	"github.com/relayd/relayd/pkg/wire"
)

const token = "a-token-of-sixteen-or-more"

// adminServer is the admin API of a node with a small tree, behind a
// token, on a real listener.
func adminServer(t *testing.T) *httptest.Server {
	t.Helper()
	tree := admin.GroupView{Group: "hq", Members: []admin.MemberView{
		{Node: "hq-1", Mode: "mirror", Generation: 7, Health: admin.HealthOK, Cache: &wire.CacheStats{Hits: 30, Misses: 10, UpstreamBytes: 500}},
	}, Children: []admin.GroupView{{Group: "branch-a", Members: []admin.MemberView{
		{Node: "a-1", Mode: "proxy", Generation: 6, Lag: 1, Health: admin.HealthStale, Cache: &wire.CacheStats{Hits: 5, Misses: 5, UpstreamBytes: 50}},
	}}}}
	h := admin.New(admin.Config{
		Status:   func() admin.Status { return admin.Status{Node: "hq-1", Group: "hq", Mode: "mirror", Generation: 7} },
		Registry: prometheus.NewRegistry(), Token: token,
		Tree:   func() admin.GroupView { return tree },
		Agents: func() admin.Agents { return admin.Agents{} },
	}, zerolog.Nop())
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// stream is an open /v1/events.
type stream struct {
	resp *http.Response
	sc   *bufio.Scanner
}

func openStream(t *testing.T, ctx context.Context, url, auth string) (*stream, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/events", nil)
	if err != nil {
		return nil, err
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { resp.Body.Close() })
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	return &stream{resp: resp, sc: sc}, nil
}

// next reads the next snapshot event.
func (s *stream) next() (map[string]json.RawMessage, error) {
	event := ""
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "snapshot":
			var doc map[string]json.RawMessage
			err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &doc)
			return doc, err
		}
	}
	if err := s.sc.Err(); err != nil {
		return nil, err
	}
	return nil, io.EOF
}

func getBody(t *testing.T, url, auth string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestAssetsPublicAPIGuarded: behind a token, the dashboard's files are
// served without it (with their CSP), while the stream and the API want it.
func TestAssetsPublicAPIGuarded(t *testing.T) {
	t.Parallel()
	srv := adminServer(t)
	for _, tc := range []struct {
		path, auth string
		want       int
		ctype      string
	}{
		{"/ui/", "", 200, "text/html"},
		{"/ui/app.js", "", 200, "text/javascript"},
		{"/ui/app.css", "", 200, "text/css"},
		{"/ui/nothing.js", "", 404, "application/json"},
		{"/ui/../v1/status", "", 404, "application/json"},
		{"/v1/events", "", 401, "application/json"},
		{"/v1/status", "", 401, "application/json"},
		{"/v1/status", "Bearer " + token, 200, "application/json"},
	} {
		code, h, body := getBody(t, srv.URL+tc.path, tc.auth)
		if code != tc.want || !strings.HasPrefix(h.Get("Content-Type"), tc.ctype) {
			t.Errorf("GET %s: %d %s, want %d %s; %.200s", tc.path, code, h.Get("Content-Type"), tc.want, tc.ctype, body)
		}
		if code == 200 && strings.HasPrefix(tc.path, "/ui/") && !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("GET %s: CSP %q", tc.path, h.Get("Content-Security-Policy"))
		}
	}
	// No framework, no CDN: the page loads only its own files.
	_, _, page := getBody(t, srv.URL+"/ui/", "")
	if strings.Contains(page, "http://") || strings.Contains(page, "https://") || strings.Contains(page, "<script>") {
		t.Errorf("the page refers to another origin or has an inline script:\n%s", page)
	}
}

// TestSameOrigin: a browser's POST from another site is refused before
// the API sees it; the same site's and a non-browser client's are not.
func TestSameOrigin(t *testing.T) {
	t.Parallel()
	srv := adminServer(t)
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   int
		code   string
	}{
		{"cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "cross_origin"},
		{"another origin", map[string]string{"Origin": "http://evil.example"}, 403, "cross_origin"},
		{"same origin", map[string]string{"Sec-Fetch-Site": "same-origin"}, 404, "no_mirror"},
		{"not a browser", nil, 404, "no_mirror"},
	} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/sync", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || !strings.Contains(string(b), `"`+tc.code+`"`) {
			t.Errorf("%s: %d %s, want %d %s", tc.name, resp.StatusCode, b, tc.want, tc.code)
		}
	}
}

// TestEventsSnapshot: a snapshot holds the admin API's documents verbatim
// and the counters of the tree; what the node does not serve is missing
// with its code.
func TestEventsSnapshot(t *testing.T) {
	t.Parallel()
	srv := adminServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := openStream(t, ctx, srv.URL, "Bearer "+token)
	if err != nil {
		t.Fatal(err)
	}
	if s.resp.StatusCode != 200 || s.resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /v1/events: %d %s", s.resp.StatusCode, s.resp.Header.Get("Content-Type"))
	}
	doc, err := s.next()
	if err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{"tree": "/v1/tree", "status": "/v1/status"} {
		_, _, want := getBody(t, srv.URL+path, "Bearer "+token)
		if string(doc[name]) != strings.TrimSpace(want) {
			t.Errorf("snapshot %s:\n%s\nwant %s:\n%s", name, doc[name], path, want)
		}
	}
	var missing map[string]string
	if err := json.Unmarshal(doc["missing"], &missing); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"cache": "no_cache", "compliance": "no_outcomes", "rollout": "no_rollout"}; !maps.Equal(missing, want) {
		t.Errorf("missing %v, want %v", missing, want)
	}
	var c ui.Counters
	if err := json.Unmarshal(doc["counters"], &c); err != nil {
		t.Fatal(err)
	}
	if want := (ui.TreeCounters{Relays: 2, Hits: 35, Misses: 15, UpstreamBytes: 550}); c.Tree != want || c.Node != nil {
		t.Errorf("counters %+v, want tree %+v and no node", c, want)
	}
	// And again, a second later.
	if _, err := s.next(); err != nil {
		t.Fatalf("second snapshot: %v", err)
	}
}

// TestEventsBounded: at most MaxStreams streams; the next is refused with
// 503 too_many_streams and Retry-After, and one closing makes room.
func TestEventsBounded(t *testing.T) {
	t.Parallel()
	srv := adminServer(t)
	max := ui.DefaultConfig().MaxStreams
	cancels := make([]context.CancelFunc, 0, max)
	for i := range max {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		cancels = append(cancels, cancel)
		s, err := openStream(t, ctx, srv.URL, "Bearer "+token)
		if err != nil || s.resp.StatusCode != 200 {
			t.Fatalf("stream %d: %v %v", i, err, s)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := openStream(t, ctx, srv.URL, "Bearer "+token)
	if err != nil {
		t.Fatal(err)
	}
	if s.resp.StatusCode == 200 {
		t.Fatalf("stream %d accepted, want 503 too_many_streams", max+1)
	}
	b, _ := io.ReadAll(s.resp.Body)
	if s.resp.StatusCode != 503 || !strings.Contains(string(b), `"too_many_streams"`) || s.resp.Header.Get("Retry-After") == "" {
		t.Fatalf("stream %d: %d %s (Retry-After %q), want 503 too_many_streams", max+1, s.resp.StatusCode, b, s.resp.Header.Get("Retry-After"))
	}
	cancels[0]()
	proctest.Eventually(t, 10*time.Second, "a stream accepted once one closed", func() error {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		s, err := openStream(t, ctx, srv.URL, "Bearer "+token)
		if err != nil {
			return err
		}
		if s.resp.StatusCode != 200 {
			cancel()
			return fmt.Errorf("status %d", s.resp.StatusCode)
		}
		return nil
	})
}

// TestEventsOutliveServerTimeouts: the admin server's read and write
// timeouts end ordinary requests, not the stream.
func TestEventsOutliveServerTimeouts(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `{"node":"n"}`) })
	ev := ui.NewEvents(ui.Config{API: mux, Interval: 50 * time.Millisecond}, zerolog.Nop())
	mux.Handle("GET /v1/events", ev)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = 200*time.Millisecond, 200*time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := openStream(t, ctx, srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n := 0
	for time.Since(start) < time.Second {
		doc, err := s.next()
		if err != nil {
			t.Fatalf("after %v and %d snapshots: %v", time.Since(start), n, err)
		}
		if string(doc["status"]) != `{"node":"n"}` {
			t.Fatalf("status %s", doc["status"])
		}
		n++
	}
}

// TestEventsAfterChange: a POST through the admin API brings a snapshot at
// once, not at the next tick; and the producer runs only while a stream is
// open.
func TestEventsAfterChange(t *testing.T) {
	t.Parallel()
	var gets atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintf(w, `{"n":%d}`, gets.Add(1))
	})
	mux.HandleFunc("POST /v1/rollout/halt", func(w http.ResponseWriter, _ *http.Request) {})
	ev := ui.NewEvents(ui.Config{API: mux, Interval: time.Hour}, zerolog.Nop())
	mux.Handle("GET /v1/events", ev)
	srv := httptest.NewServer(ev.AfterChange(mux))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	s, err := openStream(t, ctx, srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.next(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(srv.URL+"/v1/rollout/halt", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	doc, err := s.next() // an hour's interval: only the POST brings it
	if err != nil {
		t.Fatal(err)
	}
	if string(doc["status"]) != `{"n":2}` {
		t.Errorf("status after the POST %s, want the second snapshot", doc["status"])
	}
	cancel()
	proctest.Eventually(t, 10*time.Second, "the stream gone", func() error {
		resp, err := http.Post(srv.URL+"/v1/rollout/halt", "application/json", nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if n := gets.Load(); n > 3 {
			return fmt.Errorf("%d snapshots, with no stream open", n)
		}
		return nil
	})
	before := gets.Load()
	for range 3 {
		resp, err := http.Post(srv.URL+"/v1/rollout/halt", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	proctest.Consistently(t, 300*time.Millisecond, "no snapshot without a stream", func() error {
		if n := gets.Load(); n != before {
			return fmt.Errorf("%d snapshots made with no stream open (was %d)", n, before)
		}
		return nil
	})
}
