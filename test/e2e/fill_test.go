package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCoalescing100: 100 clients ask for one cold 16 MiB object at once;
// the origin sees one GET and every client gets the exact bytes.
func TestCoalescing100(t *testing.T) {
	const clients = 100
	data := makeData(1, 16<<20)
	origin := startOrigin(t)
	obj := newObject(data, "max-age=3600")
	// ~1 s of throttled body, and the second half held back until every
	// client has its response headers: they all joined the fill in flight.
	obj.chunk, obj.delay, obj.holdAt = 64<<10, 4*time.Millisecond, len(data)/2
	origin.set("/pkg/big.bin", obj)

	relay := startRelayd(t, "--mode", "proxy", "--upstream", origin.URL, "--data-dir", t.TempDir(),
		"--cache-max", "1GiB", "--upstream-stall-timeout", "60s")

	c := newClient()
	var (
		wg      sync.WaitGroup
		headers atomic.Int64
		mu      sync.Mutex
		errs    []error
		caches  = map[string]int{}
		sums    = map[string]int{}
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fail := func(err error) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("client %d: %w", i, err))
				mu.Unlock()
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, relay.URL+"/pkg/big.bin", nil)
			resp, err := c.Do(req)
			if err != nil {
				headers.Add(1)
				fail(err)
				return
			}
			defer resp.Body.Close()
			headers.Add(1)
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			if err != nil {
				fail(fmt.Errorf("body after %d bytes: %w", n, err))
				return
			}
			if resp.StatusCode != http.StatusOK {
				fail(fmt.Errorf("status %d", resp.StatusCode))
				return
			}
			mu.Lock()
			caches[resp.Header.Get("X-Relay-Cache")]++
			sums[hex.EncodeToString(h.Sum(nil))]++
			mu.Unlock()
		}()
	}
	eventually(t, 30*time.Second, "all 100 clients to get their response headers", func() error {
		if n := headers.Load(); n < clients {
			return fmt.Errorf("%d of %d have headers; origin sent %d bytes", n, clients, obj.sent.Load())
		}
		return nil
	})
	if sent := obj.sent.Load(); sent >= int64(len(data)) {
		t.Fatalf("origin already sent everything (%d bytes) before the clients joined: coalescing not exercised", sent)
	}
	close(obj.release)
	waitDone := make(chan struct{})
	go func() { wg.Wait(); close(waitDone) }()
	waitChan(t, waitDone, 60*time.Second, "100 downloads")

	for _, err := range errs {
		t.Error(err)
	}
	if got := origin.getCount("/pkg/big.bin"); got != 1 {
		t.Errorf("origin got %d GETs for the object, want exactly 1", got)
	}
	want := sha(data)
	if sums[want] != clients {
		t.Errorf("bodies by sha256: %v; want all %d = %s", sums, clients, want)
	}
	if caches["MISS"] != clients {
		t.Errorf("X-Relay-Cache counts %v, want %d MISS (all joined the one fill)", caches, clients)
	}

	// Afterwards the object comes from disk.
	r := get(t, c, http.MethodGet, relay.URL+"/pkg/big.bin")
	wantObject(t, r, data, "GET after the fill")
	if r.cache() != "HIT" {
		t.Errorf("X-Relay-Cache after the fill = %q, want HIT", r.cache())
	}
	if got := origin.getCount("/pkg/big.bin"); got != 1 {
		t.Errorf("origin got %d GETs after the HIT, want 1", got)
	}
}

// TestStreamThrough: a client that joins a fill in flight gets bytes
// before the origin has sent the whole object.
func TestStreamThrough(t *testing.T) {
	data := makeData(2, 8<<20)
	origin := startOrigin(t)
	obj := newObject(data, "max-age=3600")
	obj.chunk, obj.delay, obj.holdAt = 64<<10, 2*time.Millisecond, 6<<20
	origin.set("/iso/slow.img", obj)
	relay := startRelayd(t, "--mode", "proxy", "--upstream", origin.URL, "--data-dir", t.TempDir(),
		"--upstream-stall-timeout", "60s")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := newClient()
	first := startStreamGet(ctx, c, relay.URL+"/iso/slow.img")
	eventually(t, 10*time.Second, "the first client to receive bytes", func() error {
		if first.exited() {
			return stopErr{Err: fmt.Errorf("first download ended early: %v after %d bytes", first.err, first.got.Load())}
		}
		if first.got.Load() == 0 {
			return fmt.Errorf("no bytes yet; origin sent %d", obj.sent.Load())
		}
		return nil
	})

	late := startStreamGet(ctx, c, relay.URL+"/iso/slow.img")
	eventually(t, 10*time.Second, "the late client to receive bytes while the origin holds the tail", func() error {
		if late.exited() {
			return stopErr{Err: fmt.Errorf("late download ended early: %v after %d bytes", late.err, late.got.Load())}
		}
		if late.got.Load() == 0 {
			return fmt.Errorf("late client has no bytes; origin sent %d of %d", obj.sent.Load(), len(data))
		}
		return nil
	})
	// The origin cannot have finished: it is held until release.
	if sent := obj.sent.Load(); sent >= int64(len(data)) {
		t.Fatalf("origin sent all %d bytes already; the test's hold failed", sent)
	}
	select {
	case <-obj.sentAll:
		t.Fatal("origin finished before release")
	default:
	}
	t.Logf("late client got %d bytes while the origin had sent %d of %d", late.got.Load(), obj.sent.Load(), len(data))

	close(obj.release)
	first.wantData(t, data, 30*time.Second, "first download")
	late.wantData(t, data, 30*time.Second, "late download")
	if got := late.header.Get("X-Relay-Cache"); got != "MISS" {
		t.Errorf("late client X-Relay-Cache = %q, want MISS (joined the fill)", got)
	}
	if got := origin.getCount("/iso/slow.img"); got != 1 {
		t.Errorf("origin got %d GETs, want 1", got)
	}
}

func (s *streamGet) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}
