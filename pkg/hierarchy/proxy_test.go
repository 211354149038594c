package hierarchy

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/relayd/relayd/pkg/events"
	"github.com/relayd/relayd/pkg/wire"
)

// connectProxy is a minimal HTTPS forward proxy: it answers CONNECT by
// tunnelling to the target.
func connectProxy(t *testing.T, tunnels *sync.Map) *httptest.Server {
	t.Helper()
	p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		tunnels.Store(up.LocalAddr().String(), true)
		w.WriteHeader(http.StatusOK)
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		go func() {
			_, _ = io.Copy(up, brw)
			up.Close()
		}()
		_, _ = io.Copy(conn, up)
		conn.Close()
	}))
	t.Cleanup(p.Close)
	return p
}

// Objects and the event stream of an https parent go through
// --upstream-proxy with CONNECT.
func TestUpstreamProxyConnectForObjectsAndEvents(t *testing.T) {
	t.Parallel()
	evs := make(chan events.Event, 1)
	evs <- events.Event{ID: 1, Kind: wire.KindCatalog, Data: []byte(`{"generation":3}`)}
	var direct atomic.Int32 // requests that did not come through a tunnel
	var tunnels sync.Map
	parent := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := tunnels.Load(r.RemoteAddr); !ok {
			direct.Add(1)
		}
		switch r.URL.Path {
		case "/-/events":
			w.Header().Set("Content-Type", "text/event-stream")
			for {
				select {
				case <-r.Context().Done():
					return
				case ev := <-evs:
					_ = events.Encode(w, ev)
					w.(http.Flusher).Flush()
				}
			}
		case "/-/relays":
			http.NotFound(w, r)
		default:
			_, _ = io.WriteString(w, "secret object")
		}
	}))
	t.Cleanup(parent.Close)
	proxy := connectProxy(t, &tunnels)
	pool := x509.NewCertPool()
	pool.AddCert(parent.Certificate())
	cfg := DefaultConfig()
	cfg.Upstreams = []string{parent.URL}
	cfg.Proxy = proxy.URL
	cfg.TLS = &tls.Config{RootCAs: pool}
	c := newClient(t, cfg)

	b, err := fetchAll(t, c, "pkg")
	if err != nil || string(b) != "secret object" {
		t.Fatalf("fetch through the proxy: %q, %v", b, err)
	}
	got, stop := watchGenerations(c)
	waitGen(t, got, 3)
	stop()
	if n := direct.Load(); n != 0 {
		t.Fatalf("%d requests reached the parent without the proxy", n)
	}
}
