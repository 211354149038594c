package e2e

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCrashMidFill kills relayd with SIGKILL while a 32 MiB fill is in
// flight, restarts it on the same data dir and checks that nothing partial
// is ever served or left behind.
func TestCrashMidFill(t *testing.T) {
	data := makeData(3, 32<<20)
	const path = "/software/agent-32m.pkg"
	for _, tc := range []struct {
		name   string
		holdAt int // the origin stops here until the kill; 0: sends it all
		// allWritten waits, with the whole body sent, until the client
		// has every byte but the last one: relayd has written them all and
		// is verifying, syncing or committing.
		allWritten bool
	}{
		{"early", 1 << 20, false},
		{"middle", 16 << 20, false},
		{"after-last-byte", 0, false},
		{"at-commit", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			origin := startOrigin(t)
			slow := newObject(data, "max-age=3600")
			slow.chunk, slow.delay, slow.holdAt = 256<<10, 3*time.Millisecond, tc.holdAt
			origin.set(path, slow)
			dataDir := t.TempDir()
			args := []string{"--mode", "proxy", "--upstream", origin.URL, "--data-dir", dataDir,
				"--cache-max", "1GiB", "--upstream-stall-timeout", "60s"}
			relay := startRelayd(t, args...)

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			dl := startStreamGetAt(ctx, newClient(), relay.URL+path, int64(len(data))-1)
			if tc.holdAt > 0 {
				waitChan(t, slow.held, 20*time.Second, "the origin to reach the kill point")
				// Everything the origin sent but the last byte is visible
				// to the client: wait for it, so relayd has written it.
				eventually(t, 20*time.Second, "the client to receive what the origin sent", func() error {
					if got := dl.got.Load(); got < int64(tc.holdAt)-1 {
						return fmt.Errorf("client has %d of %d bytes", got, tc.holdAt-1)
					}
					return nil
				})
			} else {
				waitChan(t, slow.sentAll, 20*time.Second, "the origin to send the last byte")
			}
			if tc.allWritten {
				waitChan(t, dl.reached, 20*time.Second, "the client to receive all but the last byte")
			}
			relay.Kill(t)
			t.Logf("SIGKILL with the client at %d bytes, origin at %d of %d; DATA/tmp after the kill: %v",
				dl.got.Load(), slow.sent.Load(), len(data), dirNames(t, filepath.Join(dataDir, "tmp")))
			waitChan(t, dl.done, 10*time.Second, "the client to see the connection end")
			if tc.holdAt > 0 && dl.err == nil {
				t.Errorf("relayd was killed mid-fill but the client saw a complete response of %d bytes", dl.got.Load())
			}
			if dl.err == nil && dl.got.Load() == int64(len(data)) && dl.sum != sha(data) {
				t.Errorf("client got a complete response with the wrong bytes (sha256 %s)", dl.sum)
			}
			checkBlobs(t, dataDir)

			// Restart on the same data dir; the origin is fast now.
			fast := newObject(data, "max-age=3600")
			origin.set(path, fast)
			gets := origin.getCount(path)
			relay2 := startRelayd(t, args...)
			if left := dirNames(t, filepath.Join(dataDir, "tmp")); len(left) != 0 {
				t.Errorf("DATA/tmp after restart holds %v, want nothing", left)
			}
			// The running relay's disk probe writes and removes .probe
			// every few seconds: it may be there at any instant.
			names := slices.DeleteFunc(dirNames(t, dataDir), func(n string) bool { return n == ".probe" })
			// encoded: the cache of compressed forms (pkg/contentcoding).
			if !slices.Equal(names, []string{"blobs", "encoded", "index.db", "tmp"}) {
				t.Errorf("data dir holds %v, want [blobs encoded index.db tmp]", names)
			}
			if left := slices.DeleteFunc(dirNames(t, filepath.Join(dataDir, "encoded")), func(n string) bool { return !strings.HasPrefix(n, "tmp-") }); len(left) != 0 {
				t.Errorf("DATA/encoded after restart holds partial files %v", left)
			}
			checkBlobs(t, dataDir)

			c := newClient()
			r := get(t, c, http.MethodGet, relay2.URL+path)
			switch r.cache() {
			case "MISS":
				if got := origin.getCount(path); got != gets+1 {
					t.Errorf("MISS after restart but the origin got %d more GETs, want 1", got-gets)
				}
			case "HIT":
				t.Logf("the fill had committed before the kill: HIT after restart")
			default:
				t.Errorf("first response after restart has X-Relay-Cache %q, want MISS or HIT", r.cache())
			}
			wantObject(t, r, data, "first GET after restart ("+r.cache()+")")

			r = get(t, c, http.MethodGet, relay2.URL+path)
			wantObject(t, r, data, "second GET after restart")
			if r.cache() != "HIT" {
				t.Errorf("second GET after restart: X-Relay-Cache %q, want HIT", r.cache())
			}
			if left := dirNames(t, filepath.Join(dataDir, "tmp")); len(left) != 0 {
				t.Errorf("DATA/tmp after the refill holds %v, want nothing", left)
			}
			if n := checkBlobs(t, dataDir); n != 1 {
				t.Errorf("%d blobs stored, want 1", n)
			}
		})
	}
}
