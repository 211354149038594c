package loadgen

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/events"
	"github.com/relayd/relayd/pkg/wire"
)

// eventServer serves hub's stream on a loopback listener the way a relay
// does (the connection taken over, the hub's writer feeding it).
func eventServer(t *testing.T, hub *events.Hub) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closing := make(chan struct{})
	st := hub.Streams(time.Hour, time.Second, closing)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sub, err := hub.Join(events.Client{ID: r.Header.Get(wire.AgentHeader), Addr: r.RemoteAddr, Since: time.Now()})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			sub.Close()
			return
		}
		_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
		st.Attach(conn, sub)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { close(closing); srv.Close() })
	return "http://" + ln.Addr().String()
}

// Bare streams see every generation announced, and the run ends once
// they all saw one newer than the first (--stop-after-updates).
func TestRunStreamsCountsNotifications(t *testing.T) {
	t.Parallel()
	hub := events.NewHub()
	hub.Publish(wire.KindCatalog, []byte(`{"generation":1}`))
	url := eventServer(t, hub)
	const n = 20
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- RunStreams(context.Background(), StreamOptions{Relays: []string{url}, Streams: n, Duration: 20 * time.Second,
			Rate: 1000, IDPrefix: "s-", ConnectTimeout: 5 * time.Second, StopAfterUpdates: 1}, &out)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for hub.Len() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d streams joined, want %d", hub.Len(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	hub.Publish(wire.KindCatalog, []byte(`{"generation":2}`))
	if err := <-done; err != nil {
		t.Fatalf("RunStreams: %v\n%s", err, out.String())
	}
	for _, want := range []string{"generation 2: notified 20/20 within", "LOADGEN agents=20 connected=20 "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCurve(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	l := &reqLog{}
	for _, ms := range []int{-50, 0, 10, 99, 100, 250, 250, 1999} {
		l.add(t0.Add(time.Duration(ms) * time.Millisecond))
	}
	bars, last := l.curve(t0, t0.Add(300*time.Millisecond))
	if want := []int{3, 1, 2, 0}; !slices.Equal(bars, want) || last != 250*time.Millisecond {
		t.Errorf("curve = %v, last %s; want %v, 250ms", bars, last, want)
	}
}
