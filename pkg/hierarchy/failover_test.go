package hierarchy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/clock"
)

// A parent that stops sending mid-body is left when StallTimeout passes on
// the client's clock, and the body goes on from the next parent with
// Range: the test advances a fake clock instead of waiting.
func TestStalledParentResumesOnTheClock(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("0123456789abcdef"), 32<<10) // 512 KiB
	good := newParent(t, "good", data)
	stalled, release := make(chan struct{}), make(chan struct{})
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Etag", good.etag)
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(data[:100<<10])
		w.(http.Flusher).Flush()
		close(stalled)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); stall.Close() })
	fc := clock.NewFake(time.Unix(1000, 0))
	cfg := DefaultConfig()
	cfg.Upstreams, cfg.Clock, cfg.StallTimeout = []string{stall.URL, good.URL}, fc, 10*time.Second
	c := newClient(t, cfg)
	c.markFailed(mustBase(t, good.URL)) // the stalling parent is asked first
	type result struct {
		b   []byte
		err error
	}
	resp, err := c.Fetch(context.Background(), "big", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	done := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(resp.Body)
		done <- result{b, err}
	}()
	<-stalled
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if !fc.BlockUntil(wctx, 1) {
		t.Fatal("no stall guard armed")
	}
	fc.Advance(10 * time.Second)
	res := <-done
	if res.err != nil || !bytes.Equal(res.b, data) {
		t.Fatalf("got %d bytes, %v; want the %d original ones", len(res.b), res.err, len(data))
	}
	if s := c.Stats(); s.Resumes != 1 {
		t.Fatalf("resumes %d, want 1", s.Resumes)
	}
	_, ranges := good.counts()
	if len(ranges) != 1 {
		t.Fatalf("good parent saw ranges %q, want one", ranges)
	}
}
