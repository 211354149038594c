package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestQuantileNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for q, want := range map[float64]string{0: "1.0", 0.5: "50.0", 0.99: "99.0", 1: "100.0"} {
		if got := quantile(d, q); got != want {
			t.Errorf("quantile(%v) = %s, want %s", q, got, want)
		}
	}
	if got := quantile(nil, 0.5); got != "NA" {
		t.Errorf("empty: %s", got)
	}
}

func TestGetChecksSize(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Cache-Status", "HIT")
		fmt.Fprint(w, strings.Repeat("x", 1000))
	}))
	defer srv.Close()
	var total atomic.Int64
	c := newClient()
	cfg := config{url: srv.URL, n: 3, cacheHdrs: []string{"X-Cache-Status"}, bytesTotal: &total}
	c.run(context.Background(), context.Background(), cfg)
	if len(c.samples) != 3 || c.failures != 0 || total.Load() != 3000 || c.caches["HIT"] != 3 {
		t.Fatalf("samples=%d failures=%d bytes=%d caches=%v", len(c.samples), c.failures, total.Load(), c.caches)
	}
	c = newClient()
	cfg.size = 999
	c.run(context.Background(), context.Background(), cfg)
	if c.failures != 3 || c.firstErr == nil || !strings.Contains(c.firstErr.Error(), "want 999") {
		t.Fatalf("size mismatch not caught: failures=%d err=%v", c.failures, c.firstErr)
	}
}

func TestURLListRepeats(t *testing.T) {
	var u urlList
	for _, v := range []string{"http://a/x", "http://b/x"} {
		if err := u.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	if len(u) != 2 || u[1] != "http://b/x" || u.String() != "http://a/x http://b/x" {
		t.Fatalf("urlList = %v", u)
	}
}
