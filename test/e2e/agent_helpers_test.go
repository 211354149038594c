// Helpers for the agent tests: the pkg/agent library in the test process
// against real relayd processes, a transport that watches what it asks,
// and a hostile relay.
package e2e

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/agent"
)

// libAgent is a pkg/agent Agent trusting the TUF root in rootFile (the
// tree's 1.root.json), writing to dir (or discarding, if dir is empty),
// with test-sized timeouts; mod adjusts its config.
func libAgent(t testing.TB, rootFile string, relays []string, dir string, tr http.RoundTripper, mod func(*agent.Config)) *agent.Agent {
	t.Helper()
	root, err := os.ReadFile(rootFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := agent.DefaultConfig()
	cfg.Relays, cfg.Root, cfg.Dir, cfg.Discard = relays, root, dir, dir == ""
	cfg.StallTimeout, cfg.RetryBudget, cfg.BackoffMin, cfg.BackoffMax = 5*time.Second, 10*time.Second, 20*time.Millisecond, 200*time.Millisecond
	cfg.Transport = tr
	if mod != nil {
		mod(&cfg)
	}
	a, err := agent.New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// watchTransport is an http.Transport that counts object requests per
// relay host, records their Range headers, and can hold the first object
// body it sees.
type watchTransport struct {
	rt *http.Transport
	// holdPath, if set: the first response for this path is held after
	// holdAfter bytes until release is closed; heldHost is the relay's
	// host:port and held is closed when it gets there.
	holdPath  string
	holdAfter int64
	held      chan struct{}
	release   chan struct{}
	heldOnce  sync.Once
	claimed   atomic.Bool
	heldHost  string
	mu        sync.Mutex
	gets      map[string]int      // host → object GETs
	ranges    map[string][]string // host → Range headers
}

func newWatchTransport() *watchTransport {
	return &watchTransport{rt: &http.Transport{Proxy: nil, DisableCompression: true, MaxIdleConnsPerHost: 64,
		IdleConnTimeout: 30 * time.Second, DialContext: (&net.Dialer{Timeout: 3 * time.Second}).DialContext},
		held: make(chan struct{}), release: make(chan struct{}), gets: map[string]int{}, ranges: map[string][]string{}}
}

func (w *watchTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasPrefix(r.URL.Path, "/-/") {
		w.mu.Lock()
		w.gets[r.URL.Host]++
		w.ranges[r.URL.Host] = append(w.ranges[r.URL.Host], r.Header.Get("Range"))
		w.mu.Unlock()
	}
	resp, err := w.rt.RoundTrip(r)
	if err != nil || w.holdPath == "" || r.URL.Path != w.holdPath || !w.claimed.CompareAndSwap(false, true) {
		return resp, err
	}
	w.heldHost = r.URL.Host
	resp.Body = &holdBody{ReadCloser: resp.Body, w: w, left: w.holdAfter}
	return resp, nil
}

func (w *watchTransport) objectGets() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]int{}
	for k, v := range w.gets {
		out[k] = v
	}
	return out
}

func (w *watchTransport) rangesOf(host string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.ranges[host]...)
}

// holdBody passes left bytes, then waits for release.
type holdBody struct {
	io.ReadCloser
	w    *watchTransport
	left int64
}

func (h *holdBody) Read(p []byte) (int, error) {
	if h.left <= 0 {
		h.w.heldOnce.Do(func() { close(h.w.held) })
		<-h.w.release
		return h.ReadCloser.Read(p)
	}
	if int64(len(p)) > h.left {
		p = p[:h.left]
	}
	n, err := h.ReadCloser.Read(p)
	h.left -= int64(n)
	return n, err
}

func hostOf(t testing.TB, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return pu.Host
}

// hostileRelay is a broken or malicious relay on 127.0.0.1: it passes
// requests on to a good relay except those misbehave answers, and lists
// itself and the good relay in /-/relays. It counts the requests it
// misbehaved on.
type hostileRelay struct {
	URL       string
	good      string
	on        func(r *http.Request) bool // the requests it misbehaves on
	misbehave func(w http.ResponseWriter, r *http.Request)
	srv       *http.Server
	hits      atomic.Int64
	stop      chan struct{}
	client    *http.Client
	closeOnce sync.Once
	// lone lists only this relay in /-/relays: its agents have no good
	// relay to fail over to.
	lone atomic.Bool
}

func startHostile(t testing.TB, good string, on func(r *http.Request) bool, misbehave func(w http.ResponseWriter, r *http.Request)) *hostileRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hostileRelay{URL: "http://" + ln.Addr().String(), good: good, on: on, misbehave: misbehave, stop: make(chan struct{}), client: newClient()}
	h.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = h.srv.Serve(ln) }()
	t.Cleanup(func() {
		h.closeOnce.Do(func() { close(h.stop) })
		_ = h.srv.Close()
	})
	return h
}

func (h *hostileRelay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/-/relays" {
		w.Header().Set("Content-Type", "application/json")
		if h.lone.Load() {
			_, _ = io.WriteString(w, `{"group":"g","relays":[{"name":"evil","url":"`+h.URL+`"}]}`)
			return
		}
		_, _ = io.WriteString(w, `{"group":"g","relays":[{"name":"evil","url":"`+h.URL+`"},{"name":"good","url":"`+h.good+`"}]}`)
		return
	}
	// Counted before it answers: a slow answer must not be counted
	// against the next agent.
	if h.on(r) {
		h.hits.Add(1)
		h.misbehave(w, r)
		return
	}
	// Otherwise a faithful proxy of the good relay.
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, h.good+r.URL.RequestURI(), nil)
	for k, v := range r.Header {
		req.Header[k] = v
	}
	resp, err := h.client.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
