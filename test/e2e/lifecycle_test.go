package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// TestGracefulShutdown: SIGTERM during a download stops new connections at
// once, lets the download finish, then relayd exits 0.
func TestGracefulShutdown(t *testing.T) {
	data := makeData(81, 8<<20)
	origin := startOrigin(t)
	obj := newObject(data, "max-age=3600")
	obj.chunk, obj.delay, obj.holdAt = 128<<10, 2*time.Millisecond, 4<<20
	origin.set("/slow.bin", obj)
	dataDir := t.TempDir()
	args := []string{"--mode", "proxy", "--upstream", origin.URL, "--data-dir", dataDir,
		"--drain-timeout", "30s", "--upstream-stall-timeout", "60s"}
	relay := startRelayd(t, args...)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dl := startStreamGet(ctx, newClient(), relay.URL+"/slow.bin")
	eventually(t, 10*time.Second, "the download to start", func() error {
		if dl.exited() {
			return stopErr{Err: fmt.Errorf("download ended early: %v", dl.err)}
		}
		if dl.got.Load() == 0 {
			return errors.New("no bytes yet")
		}
		return nil
	})

	relay.Signal(syscall.SIGTERM)
	eventually(t, 10*time.Second, "new connections to be refused after SIGTERM", func() error {
		if relay.Exited() {
			return stopErr{Err: fmt.Errorf("relayd exited (%v) while a download was in flight", relay.WaitErr())}
		}
		conn, err := net.DialTimeout("tcp", relay.Addr, time.Second)
		if err == nil {
			conn.Close()
			return errors.New("still accepting connections")
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("dial: %v (want connection refused)", err)
		}
		return nil
	})
	if dl.exited() {
		t.Fatalf("the download ended before the origin released its tail: %v after %d bytes", dl.err, dl.got.Load())
	}
	if relay.Exited() {
		t.Fatalf("relayd exited (%v) with a download in flight", relay.WaitErr())
	}

	close(obj.release)
	dl.wantData(t, data, 30*time.Second, "download across SIGTERM")
	ok, err := relay.WaitExit(10 * time.Second)
	if !ok {
		t.Fatal("relayd still running 10s after its last download ended")
	}
	if err != nil {
		t.Errorf("relayd exit after SIGTERM: %v, want status 0", err)
	}

	// The drained fill was committed: a restart serves it from disk.
	relay2 := startRelayd(t, args...)
	r := get(t, newClient(), http.MethodGet, relay2.URL+"/slow.bin")
	wantObject(t, r, data, "GET after restart")
	if r.cache() != "HIT" {
		t.Errorf("GET after restart: X-Relay-Cache %q, want HIT", r.cache())
	}
	if got := origin.getCount("/slow.bin"); got != 1 {
		t.Errorf("origin got %d GETs, want 1", got)
	}
}

// TestStaleOnUpstreamDown: with the origin gone, a cached object past its
// max-age is served STALE and an uncached one fails with 502.
func TestStaleOnUpstreamDown(t *testing.T) {
	t.Parallel()
	data := makeData(91, 300_000)
	origin := startOrigin(t)
	// max-age=3 rather than 1: the origin's Date header has one-second
	// resolution and counts into the age, so max-age=1 could already be
	// stale on the second request.
	origin.set("/repo/Release", newObject(data, "max-age=3"))
	relay := startRelayd(t, "--mode", "proxy", "--upstream", origin.URL, "--data-dir", t.TempDir())
	c := newClient()

	r := get(t, c, http.MethodGet, relay.URL+"/repo/Release")
	wantObject(t, r, data, "first GET")
	if r.cache() != "MISS" {
		t.Errorf("first GET: X-Relay-Cache %q, want MISS", r.cache())
	}
	r = get(t, c, http.MethodGet, relay.URL+"/repo/Release")
	wantObject(t, r, data, "second GET")
	if r.cache() != "HIT" {
		t.Errorf("second GET: X-Relay-Cache %q, want HIT", r.cache())
	}

	origin.close()
	gets := 0
	eventually(t, 15*time.Second, "the object to be served STALE", func() error {
		gets++
		r, err := tryGet(c, http.MethodGet, relay.URL+"/repo/Release")
		if err != nil {
			return stopErr{Err: err}
		}
		if r.status != http.StatusOK || sha(r.body) != sha(data) {
			return stopErr{Err: fmt.Errorf("status %d, %d bytes sha256 %s (X-Relay-Cache %q); want the cached bytes", r.status, len(r.body), sha(r.body), r.cache())}
		}
		switch r.cache() {
		case "STALE":
			return nil
		case "HIT":
			return errors.New("still fresh")
		default:
			return stopErr{Err: fmt.Errorf("X-Relay-Cache %q with the origin down, want HIT then STALE", r.cache())}
		}
	})
	t.Logf("STALE after %d polls", gets)

	r = get(t, c, http.MethodGet, relay.URL+"/repo/not-cached")
	wantJSONError(t, r, http.StatusBadGateway, "upstream_failed", "uncached object with the origin down")
}
