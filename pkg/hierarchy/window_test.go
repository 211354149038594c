package hierarchy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/priority"
)

// windowUpstream serves every path with body, counting requests by path.
type windowUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newWindowUpstream(t *testing.T, body string) *windowUpstream {
	u := &windowUpstream{hits: map[string]int{}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.hits[r.URL.Path]++
		u.mu.Unlock()
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *windowUpstream) count(path string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits[path]
}

// windowClient is a client of up whose schedule holds background traffic
// from 08:00 to 09:00 UTC on Mondays, on a fake clock at Monday 08:59:00.
func windowClient(t *testing.T, up *windowUpstream) (*Client, *clock.Fake) {
	clk := clock.NewFake(time.Date(2026, 12, 7, 8, 59, 0, 0, time.UTC))
	cfg := DefaultConfig()
	cfg.Upstreams = []string{up.URL}
	cfg.Schedule = "Mon 08:00-09:00=0, *=50MB/s"
	cfg.Location = time.UTC
	cfg.Urgent = []string{"security/**"}
	cfg.StallTimeout = 365 * 24 * time.Hour // the fake clock jumps days; no stall guard may fire
	cfg.Clock = clk
	return newClient(t, cfg), clk
}

func fetchBody(ctx context.Context, c *Client, key string) (string, error) {
	resp, err := c.Fetch(ctx, key, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func waiting(c *Client, class string) int64 {
	for _, w := range c.WindowStatus().Waiting {
		if w.Class == class {
			return w.Requests
		}
	}
	return -1
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !f(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A window of rate 0 holds a background request (it is not even sent)
// until the window ends; foreground fills, urgent paths and the tree's
// metadata pass at once.
func TestWindowHoldsBackground(t *testing.T) {
	t.Parallel()
	up := newWindowUpstream(t, "data")
	c, clk := windowClient(t, up)
	if w := c.WindowStatus(); !w.Held || w.Rule != "Mon 08:00-09:00=0" || !w.Until.Equal(time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)) {
		t.Fatalf("window %+v, want Mon 08:00-09:00=0 held until 09:00", w)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := fetchBody(Background(ctx), c, "software/app/1.0/app.bin")
		done <- err
	}()
	eventually(t, "the background request to wait", func() bool { return waiting(c, "background") == 1 })
	for _, k := range []struct {
		key string
		ctx context.Context
	}{
		{"software/app/1.0/other.bin", ctx},       // foreground
		{"security/rules.txt", Background(ctx)},   // urgent
		{"-/tuf/timestamp.json", Background(ctx)}, // metadata
	} {
		if got, err := fetchBody(k.ctx, c, k.key); err != nil || got != "data" {
			t.Fatalf("%s during the held window: %q, %v", k.key, got, err)
		}
	}
	if n := up.count("/software/app/1.0/app.bin"); n != 0 {
		t.Fatalf("the held request reached the upstream %d times during the window", n)
	}
	select {
	case err := <-done:
		t.Fatalf("background request ended during the window: %v", err)
	default:
	}
	clk.Advance(time.Minute) // 09:00: the window ends
	if err := <-done; err != nil {
		t.Fatalf("background request after the window: %v", err)
	}
	if n, w := up.count("/software/app/1.0/app.bin"), waiting(c, "background"); n != 1 || w != 0 {
		t.Fatalf("after the window: %d requests upstream, %d waiting; want 1, 0", n, w)
	}
	if w := c.WindowStatus(); w.Held || w.RateBytesPerSec != 50e6 || w.Rule != "*=50MB/s" {
		t.Fatalf("window after 09:00: %+v", w)
	}
}

// A held background request goes at once when a waiting requester
// promotes it (a prefetch fill an agent joins).
func TestWindowPromotion(t *testing.T) {
	t.Parallel()
	up := newWindowUpstream(t, "data")
	c, _ := windowClient(t, up)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pctx, promote := priority.Promotable(Background(ctx))
	done := make(chan error, 1)
	go func() {
		_, err := fetchBody(pctx, c, "software/app/1.0/app.bin")
		done <- err
	}()
	eventually(t, "the background request to wait", func() bool { return waiting(c, "background") == 1 })
	promote()
	if err := <-done; err != nil {
		t.Fatalf("promoted request: %v", err)
	}
	if n := up.count("/software/app/1.0/app.bin"); n != 1 {
		t.Fatalf("promoted request reached the upstream %d times, want 1", n)
	}
}

// A background body caught by a window of rate 0 ends with
// ErrWindowClosed (the parent would not wait that long); foreground
// bodies go on.
func TestWindowClosesMidBody(t *testing.T) {
	t.Parallel()
	up := newWindowUpstream(t, strings.Repeat("x", 1<<20))
	c, clk := windowClient(t, up)
	clk.Advance(23 * time.Hour) // Tuesday 07:59: "*=50MB/s"
	ctx := context.Background()
	bg, err := c.Fetch(Background(ctx), "software/app/1.0/app.bin", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bg.Body.Close()
	fg, err := c.Fetch(ctx, "software/app/1.0/app.bin", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fg.Body.Close()
	buf := make([]byte, 1024)
	if _, err := io.ReadFull(bg.Body, buf); err != nil {
		t.Fatal(err)
	}
	clk.Advance(6*24*time.Hour + time.Minute) // Monday 08:00
	if _, err := io.ReadAll(bg.Body); !errors.Is(err, ErrWindowClosed) {
		t.Fatalf("background body in a held window: %v, want ErrWindowClosed", err)
	}
	if b, err := io.ReadAll(fg.Body); err != nil || len(b) != 1<<20 {
		t.Fatalf("foreground body: %d bytes, %v", len(b), err)
	}
}

// Under a window's rate the background bucket takes the window's rate
// and a foreground cap applies to foreground reads only.
func TestWindowRates(t *testing.T) {
	t.Parallel()
	sched, err := ParseSchedule("Mon 08:00-09:00=64KB/s, *=0", time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Date(2026, 12, 7, 8, 30, 0, 0, time.UTC))
	l := newLimiter(limitConfig{foreground: 1 << 20, sched: sched, clock: clk})
	ctx := context.Background()
	if err := l.wait(ctx, ClassBackground, l.chunk); err != nil {
		t.Fatal(err)
	}
	if got := float64(l.bg.Limit()); got != 64e3 {
		t.Fatalf("background bucket at %v B/s, want the window's 64000", got)
	}
	if got := float64(l.fg.Limit()); got != 1<<20 {
		t.Fatalf("foreground bucket at %v B/s, want 1 MiB/s", got)
	}
	if l.chunk > burst(64e3) {
		t.Fatalf("read chunk %d beyond the smallest burst %d", l.chunk, burst(64e3))
	}
	clk.Advance(time.Hour) // "*=0": a background read is refused, a foreground one passes
	if err := l.wait(ctx, ClassBackground, l.chunk); !errors.Is(err, ErrWindowClosed) {
		t.Fatalf("background read in a held window: %v", err)
	}
	if err := l.wait(ctx, ClassForeground, l.chunk); err != nil {
		t.Fatalf("foreground read in a held window: %v", err)
	}
	if err := l.wait(ctx, ClassUrgent, l.chunk); err != nil {
		t.Fatalf("urgent read in a held window: %v", err)
	}
}

// Wire and content bytes are counted apart, per kind: an unencoded body
// counts as both, an encoded one on the wire only (its decoder counts the
// content), an error body on the wire only; peers are not the WAN.
func TestTrafficAccounting(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/security/rules.txt":
			_, _ = io.WriteString(w, strings.Repeat("r", 1000))
		case "/software/app/1.0/app.bin":
			w.Header().Set("Content-Encoding", "zstd")
			_, _ = io.WriteString(w, strings.Repeat("z", 300))
		default:
			http.Error(w, "gone", http.StatusNotFound) // "gone\n"
		}
	}))
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.Upstreams = []string{srv.URL}
	c := newClient(t, cfg)
	ctx := context.Background()
	for _, k := range []string{"security/rules.txt", "software/app/1.0/app.bin", "debian/missing"} {
		if _, err := fetchBody(ctx, c, k); err != nil {
			t.Fatal(err)
		}
	}
	c.CountContent("software/app/1.0/app.bin", 1500) // as a zstd decoder would
	if _, err := io.Copy(io.Discard, c.ContentBody("software/app/1.0/app.bin", io.NopCloser(strings.NewReader(strings.Repeat("d", 500))))); err != nil {
		t.Fatal(err)
	}
	resp, err := c.FetchFrom(ctx, srv.URL, "security/rules.txt", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	tr := c.Traffic()
	want := map[string][2]int64{"security": {1000, 1000}, "software": {300, 2000}, "other": {5, 0}}
	for _, k := range tr.Kinds {
		if got := [2]int64{k.WireBytes, k.ContentBytes}; got != want[k.Kind] {
			t.Errorf("%s: wire, content = %v, want %v", k.Kind, got, want[k.Kind])
		}
	}
	if tr.WireBytes != 1305 || tr.ContentBytes != 3000 || tr.WireRatio != 1305.0/3000 {
		t.Errorf("totals %+v", tr)
	}
	if hits.Load() != 4 {
		t.Errorf("%d requests, want 4", hits.Load())
	}
}
