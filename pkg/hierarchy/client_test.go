package hierarchy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFetchPathAndHeaders(t *testing.T) {
	t.Parallel()
	var gotPath, gotUA, gotINM string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotUA, gotINM = r.URL.EscapedPath(), r.UserAgent(), r.Header.Get("If-None-Match")
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.Upstreams = []string{srv.URL + "/mirror/"}
	c := newClient(t, cfg)
	resp, err := c.Fetch(context.Background(), "debian/a b/c!d+e.deb", http.Header{"If-None-Match": {`"x"`}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := "/mirror/debian/a%20b/c!d+e.deb"; gotPath != want {
		t.Errorf("path %q, want %q", gotPath, want)
	}
	if gotUA != "relayd" || gotINM != `"x"` {
		t.Errorf("user agent %q, If-None-Match %q", gotUA, gotINM)
	}
}

func TestFailoverToNextUpstream(t *testing.T) {
	t.Parallel()
	var badHits atomic.Int32
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		badHits.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer bad.Close()
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "good") }))
	defer good.Close()
	// A closed port: connection refused.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + l.Addr().String()
	l.Close()

	cfg := DefaultConfig()
	cfg.Upstreams = []string{bad.URL, dead, good.URL}
	c := newClient(t, cfg)
	for range 10 {
		resp, err := c.Fetch(context.Background(), "x", nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "good" {
			t.Fatalf("body %q", b)
		}
	}
	// Failed upstreams are put behind the healthy one for a while.
	if n := badHits.Load(); n > 2 {
		t.Errorf("failing upstream asked %d times in 10 fetches; backoff should skip it", n)
	}
}

func TestAllUpstreamsDown(t *testing.T) {
	t.Parallel()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + l.Addr().String()
	l.Close()
	cfg := DefaultConfig()
	cfg.Upstreams = []string{dead}
	c := newClient(t, cfg)
	if _, err := c.Fetch(context.Background(), "x", nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if _, err := newClient(t, DefaultConfig()).Fetch(context.Background(), "x", nil); !errors.Is(err, ErrNoUpstream) {
		t.Fatalf("err = %v, want ErrNoUpstream", err)
	}
}

func TestStallTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		_, _ = io.WriteString(w, "first bytes")
		w.(http.Flusher).Flush()
		select { // then silence
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.Upstreams = []string{srv.URL}
	cfg.StallTimeout = 200 * time.Millisecond
	c := newClient(t, cfg)
	resp, err := c.Fetch(context.Background(), "slow", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	_, err = io.ReadAll(resp.Body)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stall detected after %s", d)
	}
}

func TestUpstreamProxy(t *testing.T) {
	t.Parallel()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "via proxy") }))
	defer origin.Close()
	var proxied atomic.Int32
	// A minimal forward proxy: absolute-form requests are passed on.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.URL.IsAbs() {
			http.Error(w, "not a proxy request", http.StatusBadRequest)
			return
		}
		proxied.Add(1)
		out, _ := http.NewRequestWithContext(r.Context(), r.Method, r.URL.String(), nil)
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	defer proxy.Close()
	cfg := DefaultConfig()
	cfg.Upstreams = []string{origin.URL}
	cfg.Proxy = proxy.URL
	c := newClient(t, cfg)
	resp, err := c.Fetch(context.Background(), "x", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "via proxy" || proxied.Load() != 1 {
		t.Fatalf("body %q, proxied %d", b, proxied.Load())
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{
		{Upstreams: []string{"ftp://x"}},
		{Upstreams: []string{"http://"}},
		{Upstreams: []string{"http://x/?q=1"}},
		{Upstreams: []string{"http://x"}, Proxy: "socks5://p:1"},
	} {
		if _, err := New(cfg, zerolog.Nop()); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	u, err := ParseBase("https://relay.example:20081/base/")
	if err != nil || u.Path != "/base" {
		t.Fatalf("ParseBase: %v %v", u, err)
	}
}
