package e2e

// A scripted origin for the HTTP caching semantics tests (issue 14): each
// path has its own handler, and every request it gets is recorded.

import (
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

type semOrigin struct {
	URL string

	mu     sync.Mutex
	routes map[string]http.HandlerFunc
	seen   map[string][]seenRequest // by path
}

type seenRequest struct {
	uri    string
	header http.Header
}

func startSemOrigin(t testing.TB) *semOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &semOrigin{URL: "http://" + ln.Addr().String(), routes: map[string]http.HandlerFunc{}, seen: map[string][]seenRequest{}}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: o}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return o
}

func (o *semOrigin) handle(path string, fn http.HandlerFunc) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.routes[path] = fn
}

func (o *semOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	fn := o.routes[r.URL.Path]
	if fn != nil {
		o.seen[r.URL.Path] = append(o.seen[r.URL.Path], seenRequest{uri: r.RequestURI, header: r.Header.Clone()})
	}
	o.mu.Unlock()
	if fn == nil {
		http.NotFound(w, r) // the relay API probes (/-/relays, …)
		return
	}
	fn(w, r)
}

// requests returns what the origin was asked at path.
func (o *semOrigin) requests(path string) []seenRequest {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]seenRequest(nil), o.seen[path]...)
}

// static answers with body and the given header pairs; 304 when the
// request's If-None-Match names the ETag it sends.
func static(body string, hdr ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Add(hdr[i], hdr[i+1])
		}
		if et := w.Header().Get("Etag"); et != "" && r.Header.Get("If-None-Match") == et {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write([]byte(body))
	}
}

// startSemRelay starts a proxy relay over the origin.
func startSemRelay(t testing.TB, o *semOrigin, args ...string) *proc {
	t.Helper()
	return startRelayd(t, append([]string{"--mode", "proxy", "--upstream", o.URL, "--data-dir", t.TempDir()}, args...)...)
}

// wantResp checks a response's status, body and X-Relay-Cache ("" for
// any).
func wantResp(t testing.TB, r response, status int, body, cache, what string) {
	t.Helper()
	if r.status != status || string(r.body) != body || (cache != "" && r.cache() != cache) {
		t.Fatalf("%s: %d %q (%s), want %d %q (%s)", what, r.status, truncate(r.body), r.cache(), status, body, cache)
	}
}
