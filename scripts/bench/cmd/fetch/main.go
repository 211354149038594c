// Command fetch is the benchmark's HTTP load client for large objects and
// thundering herds.
//
// -c clients each own one keep-alive connection (a private Transport). They
// are created first and then released together at a barrier, so a herd
// really arrives at once. Each client GETs -url -n times (with -url given
// several times, client i uses the (i mod count)-th URL: one herd spread
// over several servers), or in a loop until
// -d has passed (still at most -n requests). Per request it records the time
// to the first body byte (TTFB) and to the last body byte (TTLB), measured
// from just before the request is written, and checks the status (200) and
// the byte count (-size if given, else Content-Length).
//
// It prints one line of key=value pairs: counts, min/p50/max TTFB and TTLB
// in ms, aggregate GB/s (1e9 bytes/s, every body byte received while the
// clock ran, including the partial bodies of requests cut at the -d
// deadline), and a tally of statuses and cache headers. It exits 1 if any
// request failed; requests cut by the deadline are not failures.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type sample struct {
	ttfb, ttlb time.Duration
}

// client is one simulated downloader and what it saw.
type client struct {
	hc       *http.Client
	samples  []sample
	failures int
	cut      int
	firstErr error
	statuses map[int]int
	caches   map[string]int
}

type config struct {
	url        string // this client's URL
	n          int
	size       int64
	cacheHdrs  []string
	bytesTotal *atomic.Int64
}

// urlList is a flag that may be repeated.
type urlList []string

func (u *urlList) String() string     { return strings.Join(*u, " ") }
func (u *urlList) Set(v string) error { *u = append(*u, v); return nil }

func main() {
	var urls urlList
	flag.Var(&urls, "url", "URL to GET; repeat it to spread the clients round-robin over several URLs")
	clients := flag.Int("c", 1, "concurrent clients, one keep-alive connection each")
	n := flag.Int("n", 1, "requests per client (the cap when -d is set)")
	dur := flag.Duration("d", 0, "loop until this much time has passed (0: exactly -n requests per client)")
	limit := flag.Duration("timeout", 120*time.Second, "hard limit for the whole run")
	size := flag.Int64("size", 0, "expected body size in bytes (0: trust Content-Length)")
	hdrs := flag.String("cache-header", "X-Relay-Cache,X-Cache-Status,X-Cache", "response headers tallied as the cache status (first present wins)")
	flag.Parse()
	if len(urls) == 0 || slices.Contains(urls, "") || *clients < 1 || *n < 1 {
		fmt.Fprintln(os.Stderr, "usage: fetch -url URL [-url URL2 ...] [-c clients] [-n requests] [-d duration] [-size bytes]")
		os.Exit(2)
	}

	hard, cancel := context.WithTimeout(context.Background(), *limit)
	defer cancel()
	loop := hard
	if *dur > 0 {
		var stop context.CancelFunc
		loop, stop = context.WithTimeout(hard, *dur)
		defer stop()
	}

	var bytesTotal atomic.Int64
	cfg := config{n: *n, size: *size, cacheHdrs: strings.Split(*hdrs, ","), bytesTotal: &bytesTotal}
	cs := make([]*client, *clients)
	for i := range cs {
		cs[i] = newClient()
	}

	// Barrier: every goroutine is parked on release before the clock starts.
	release := make(chan struct{})
	var parked, finished sync.WaitGroup
	for i, c := range cs {
		parked.Add(1)
		finished.Add(1)
		ccfg := cfg
		ccfg.url = urls[i%len(urls)]
		go func() {
			defer finished.Done()
			parked.Done()
			<-release
			c.run(hard, loop, ccfg)
		}()
	}
	parked.Wait()
	start := time.Now()
	close(release)
	finished.Wait()
	elapsed := time.Since(start)

	fmt.Println(summarize(cs, bytesTotal.Load(), elapsed))
	for _, c := range cs {
		if c.firstErr != nil {
			fmt.Fprintln(os.Stderr, "fetch: first error:", c.firstErr)
			os.Exit(1)
		}
	}
}

func newClient() *client {
	tr := &http.Transport{
		Proxy:               nil, // never an environment proxy: loopback only
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 1,
		MaxConnsPerHost:     1,
		DisableCompression:  true, // measure the object, not gzip
		ForceAttemptHTTP2:   false,
		ReadBufferSize:      256 << 10,
	}
	return &client{
		hc:       &http.Client{Transport: tr},
		statuses: map[int]int{},
		caches:   map[string]int{},
	}
}

// run issues up to cfg.n requests. hard is the whole run's limit: a request
// it interrupts has failed. loop ends -d: a request it interrupts was cut
// by the clock and only its bytes count.
func (c *client) run(hard, loop context.Context, cfg config) {
	buf := make([]byte, 256<<10)
	for range cfg.n {
		if loop.Err() != nil {
			break
		}
		s, err := c.get(loop, cfg, buf)
		switch {
		case err == nil:
			c.samples = append(c.samples, s)
			continue
		case hard.Err() != nil:
			err = fmt.Errorf("hard timeout: %w", err)
		case loop.Err() != nil:
			c.cut++
			return
		}
		c.failures++
		if c.firstErr == nil {
			c.firstErr = err
		}
	}
}

// get performs one request and reads the whole body.
func (c *client) get(ctx context.Context, cfg config, buf []byte) (sample, error) {
	var s sample
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.url, nil)
	if err != nil {
		return s, err
	}
	t0 := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	c.statuses[resp.StatusCode]++
	for _, h := range cfg.cacheHdrs {
		if v := resp.Header.Get(h); v != "" {
			c.caches[strings.Fields(v)[0]]++
			break
		}
	}
	var got int64
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if got == 0 {
				s.ttfb = time.Since(t0)
			}
			got += int64(n)
			cfg.bytesTotal.Add(int64(n))
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return s, fmt.Errorf("after %d bytes: %w", got, rerr)
		}
	}
	s.ttlb = time.Since(t0)
	if got == 0 {
		s.ttfb = s.ttlb
	}
	want := cfg.size
	if want == 0 {
		want = resp.ContentLength
	}
	switch {
	case resp.StatusCode != http.StatusOK:
		return s, fmt.Errorf("status %d", resp.StatusCode)
	case want >= 0 && got != want:
		return s, fmt.Errorf("got %d bytes, want %d", got, want)
	}
	return s, nil
}

func summarize(cs []*client, bytes int64, elapsed time.Duration) string {
	var ttfb, ttlb []time.Duration
	var failures, cut int
	statuses := map[int]int{}
	caches := map[string]int{}
	for _, c := range cs {
		for _, s := range c.samples {
			ttfb = append(ttfb, s.ttfb)
			ttlb = append(ttlb, s.ttlb)
		}
		failures += c.failures
		cut += c.cut
		for k, v := range c.statuses {
			statuses[k] += v
		}
		for k, v := range c.caches {
			caches[k] += v
		}
	}
	secs := elapsed.Seconds()
	kv := []string{
		fmt.Sprintf("clients=%d", len(cs)),
		fmt.Sprintf("ok=%d", len(ttlb)),
		fmt.Sprintf("fail=%d", failures),
		fmt.Sprintf("cut=%d", cut),
		fmt.Sprintf("bytes=%d", bytes),
		fmt.Sprintf("secs=%.3f", secs),
		fmt.Sprintf("gbps=%.3f", float64(bytes)/secs/1e9),
	}
	for _, q := range []struct {
		name string
		d    []time.Duration
	}{{"ttfb", ttfb}, {"ttlb", ttlb}} {
		slices.Sort(q.d)
		kv = append(kv,
			fmt.Sprintf("%s_min_ms=%s", q.name, quantile(q.d, 0)),
			fmt.Sprintf("%s_p50_ms=%s", q.name, quantile(q.d, 0.5)),
			fmt.Sprintf("%s_max_ms=%s", q.name, quantile(q.d, 1)))
	}
	kv = append(kv, "status="+tally(statuses), "cache="+tally(caches))
	return strings.Join(kv, " ")
}

// quantile returns the nearest-rank q-quantile of sorted d in ms, or NA.
func quantile(d []time.Duration, q float64) string {
	if len(d) == 0 {
		return "NA"
	}
	i := int(q*float64(len(d))+0.999999) - 1
	i = min(max(i, 0), len(d)-1)
	return fmt.Sprintf("%.1f", float64(d[i])/float64(time.Millisecond))
}

// tally renders a count map as "k:v,k:v" in key order ("-" when empty).
func tally[K int | string](m map[K]int) string {
	if len(m) == 0 {
		return "-"
	}
	parts := []string{}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%v:%d", k, m[k]))
	}
	return strings.Join(parts, ",")
}
