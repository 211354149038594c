package hostile

// Content under --root (issue 11, rows 3, 5 and 7): a relay or agent
// that verifies against the signed catalog serves, stores and keeps in
// memory nothing a broken or hostile upstream can inflate or forge.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relayd/relayd/internal/proctest"
	"github.com/relayd/relayd/pkg/digest"
)

// errorCode is the "code" of a JSON error body, "" if there is none.
func errorCode(body []byte) string {
	var e struct{ Code string }
	_ = json.Unmarshal(body, &e)
	return e.Code
}

// Row 3: a fresh --root proxy whose upstream answers 404 for its metadata
// used to log "objects are cached without catalog verification" and serve
// and cache unverified objects with 200. Now it fails closed, and asks
// every upstream and fallback before it concludes there is no catalog.
func TestCatalog404FailsClosed(t *testing.T) {
	t.Parallel()
	data := randomBytes(31, 300_000)
	tr := publishTree(t, map[string][]byte{"security/kb-31.patch": data})
	noCatalog := startEvil(t, tr.Dir, metaPath+"=404")
	relay := startRelayd(t, "--mode", "proxy", "--upstream", noCatalog.URL, "--data-dir", t.TempDir(), "--root", tr.Root)

	// Every object request is refused while no catalog verifies, and
	// nothing is fetched (so nothing can be stored); the catalog is asked
	// for again (1 s, 2 s backoff), not given up on.
	catalogGETs := func(n int) func() error {
		return func() error {
			if got := proctest.CountRequests(noCatalog.Log(), http.MethodGet, metaPath); got < n {
				return fmt.Errorf("%d catalog GETs", got)
			}
			return nil
		}
	}
	proctest.Eventually(t, 20*time.Second, "the proxy to ask for the catalog", catalogGETs(1))
	refused := func() {
		for _, path := range []string{"/security/kb-31.patch", "/not/listed.bin"} {
			a := do(http.MethodGet, relay.URL+path, 1<<20)
			if a.Status != http.StatusServiceUnavailable || errorCode(a.Body) != "catalog_unavailable" || a.Header.Get("Retry-After") == "" {
				t.Errorf("GET %s without a catalog: status %d, Retry-After %q, %d bytes (the object: %v); want 503 catalog_unavailable with Retry-After",
					path, a.Status, a.Header.Get("Retry-After"), len(a.Body), bytes.Equal(a.Body, data))
			}
		}
	}
	refused()
	proctest.Eventually(t, 20*time.Second, "the proxy to ask for the catalog three times", catalogGETs(3))
	refused()
	ready := do(http.MethodGet, relay.URL+"/-/readyz", 1<<20)
	if ready.Status != http.StatusServiceUnavailable || !strings.Contains(string(ready.Body), "no verified catalog") {
		t.Errorf("/-/readyz without a catalog: %d %s; want 503 naming the missing catalog", ready.Status, ready.Body)
	}
	if n := proctest.CountRequests(noCatalog.Log(), http.MethodGet, "/security/kb-31.patch"); n != 0 {
		t.Errorf("the upstream was asked %d times for the object while no catalog verified it", n)
	}
	if strings.Contains(relay.Log(), "without catalog verification") {
		t.Error("the relay logs that it caches without catalog verification")
	}

	// A mirror holds: nothing is served or fetched without a live
	// generation.
	mirror := startRelayd(t, "--mode", "mirror", "--upstream", noCatalog.URL, "--data-dir", t.TempDir(), "--root", tr.Root)
	mirrorAsked := func() int { return proctest.CountRequests(noCatalog.Log(), http.MethodGet, metaPath) }
	before := mirrorAsked()
	proctest.Eventually(t, 20*time.Second, "the mirror to ask for the catalog", func() error {
		if mirrorAsked() == before {
			return fmt.Errorf("no catalog GET yet")
		}
		return nil
	})
	if a := do(http.MethodGet, mirror.URL+"/security/kb-31.patch", 1<<20); a.Status != http.StatusServiceUnavailable || bytes.Equal(a.Body, data) {
		t.Errorf("mirror without a catalog: status %d, %d bytes; want 503 and not the object", a.Status, len(a.Body))
	}
	if n := proctest.CountRequests(noCatalog.Log(), http.MethodGet, "/security/kb-31.patch"); n != 0 {
		t.Errorf("the upstream was asked %d times for the object while no catalog verified it", n)
	}

	// One upstream's 404 is not the tree's answer: a second upstream, or a
	// fallback, that serves the catalog is found.
	good := startEvil(t, tr.Dir)
	for _, args := range [][]string{
		{"--upstream", noCatalog.URL + "," + good.URL},
		{"--upstream", noCatalog.URL, "--fallback", good.URL},
	} {
		r := startRelayd(t, append([]string{"--mode", "proxy", "--data-dir", t.TempDir(), "--root", tr.Root}, args...)...)
		proctest.Eventually(t, 20*time.Second, "the catalog from "+strings.Join(args, " "), func() error {
			a := do(http.MethodGet, r.URL+"/security/kb-31.patch", 1<<20)
			if a.Status != http.StatusOK || !bytes.Equal(a.Body, data) {
				return fmt.Errorf("status %d, %d bytes: %.200s", a.Status, len(a.Body), a.Body)
			}
			return nil
		})
		if a := do(http.MethodGet, r.URL+"/not/listed.bin", 1<<20); a.Status != http.StatusNotFound || errorCode(a.Body) != "not_in_catalog" {
			t.Errorf("%s: an unlisted path: status %d %.200s, want 404 not_in_catalog", args, a.Status, a.Body)
		}
	}
}

// rssPeak samples a process's RSS every 10 ms until stop is called, and
// returns the highest value seen.
func rssPeak(t *testing.T, pid int) (stop func() int64) {
	t.Helper()
	var (
		mu   sync.Mutex
		peak int64
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, err := proctest.RSS(pid); err == nil {
				mu.Lock()
				peak = max(peak, rss)
				mu.Unlock()
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	var once sync.Once
	stop = func() int64 {
		once.Do(func() { close(done); wg.Wait() })
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
	t.Cleanup(func() { stop() })
	return stop
}

// catalogCap is the catalog-max the endless-catalog tests set, and slack
// what the issue allows on top of it.
const (
	catalogCap = 16 << 20
	slack      = 32 << 20
)

// Row 5: an endless catalog (now: an endless /-/tuf/timestamp.json, the
// file every relay asks first) made a proxy reach 1.8 GB RSS on every
// retry. The timestamp is read within 16 KiB whatever catalog-max is
// (16MiB here): a relay's RSS rises by at most the cap plus 32 MiB, over
// several retries, and it keeps serving its live generation.
func TestEndlessMetadataRelayRSS(t *testing.T) {
	t.Parallel()
	data := randomBytes(51, 100_000)
	tr := publishTree(t, map[string][]byte{"security/kb-51.patch": data})
	evil := startEvil(t, tr.Dir)
	relay := startRelayd(t, "--mode", "proxy", "--upstream", evil.URL, "--data-dir", t.TempDir(), "--root", tr.Root,
		"--catalog-max", "16MiB", "--mirror-interval", "1s")
	proctest.Eventually(t, 20*time.Second, "the proxy to serve with its catalog", func() error {
		if a := do(http.MethodGet, relay.URL+"/security/kb-51.patch", 1<<20); a.Status != http.StatusOK || !bytes.Equal(a.Body, data) {
			return fmt.Errorf("status %d, %d bytes", a.Status, len(a.Body))
		}
		return nil
	})
	base, err := proctest.RSS(relay.Pid())
	if err != nil {
		t.Fatal(err)
	}
	before := proctest.CountRequests(evil.Log(), http.MethodGet, metaPath)
	peak := rssPeak(t, relay.Pid())
	setEvil(t, evil, metaPath+"=endless")
	// Syncs are serial: the GET after the tries-th starts once that read
	// was refused, so tries whole reads lie inside the sampled window.
	const tries = 5
	proctest.Eventually(t, 60*time.Second, fmt.Sprintf("%d reads of the endless catalog", tries), func() error {
		if n := proctest.CountRequests(evil.Log(), http.MethodGet, metaPath) - before; n < tries+1 {
			return fmt.Errorf("%d so far", n)
		}
		return nil
	})
	rise := peak() - base
	t.Logf("relay RSS %d MiB at rest, peak rise %d MiB over %d endless catalogs (cap %d MiB)", base>>20, rise>>20, tries, catalogCap>>20)
	if rise > catalogCap+slack {
		t.Errorf("relay RSS rose by %d MiB, want at most catalog-max + 32 MiB = %d MiB", rise>>20, (catalogCap+slack)>>20)
	}
	if a := do(http.MethodGet, relay.URL+"/security/kb-51.patch", 1<<20); a.Status != http.StatusOK || !bytes.Equal(a.Body, data) {
		t.Errorf("after the endless catalogs: status %d, %d bytes; want the live generation's object", a.Status, len(a.Body))
	}
}

// Row 5, the agent side: an endless catalog made an agent reach 0.67 GB.
// Against an endless timestamp.json, with --catalog-max 16MiB, its RSS
// rises by at most the cap plus 32 MiB over the peak of the same command
// against a relay whose metadata requests cost nothing (404).
func TestEndlessMetadataAgentRSS(t *testing.T) {
	t.Parallel()
	tr := publishTree(t, map[string][]byte{"security/kb-52.patch": randomBytes(52, 1000)})
	fetch := func(rule string) (peak int64, catalogGETs int) {
		evil := startEvil(t, tr.Dir, rule)
		argv := []string{relaydBin, "fetch", "--relay", evil.URL, "--root", tr.Root, "--out", t.TempDir(),
			"--catalog-max", "16MiB", "--retry-budget", "4s", "--quiet", "security/kb-52.patch"}
		p := proctest.Start(t, "fetch", argv, nil, "")
		stop := rssPeak(t, p.Pid())
		if exited, _ := p.WaitExit(60 * time.Second); !exited {
			t.Fatalf("relayd fetch against %s did not give up", rule)
		}
		if p.WaitErr() == nil {
			t.Fatalf("relayd fetch against %s succeeded", rule)
		}
		return stop(), proctest.CountRequests(evil.Log(), http.MethodGet, metaPath)
	}
	control, _ := fetch(metaPath + "=404")
	peak, gets := fetch(metaPath + "=endless")
	rise := peak - control
	t.Logf("agent peak RSS %d MiB against an endless catalog (%d reads), %d MiB against a 404 (cap %d MiB)", peak>>20, gets, control>>20, catalogCap>>20)
	if gets < 2 {
		t.Errorf("the agent read the endless catalog %d times, want several (retries)", gets)
	}
	if rise > catalogCap+slack {
		t.Errorf("agent RSS rose by %d MiB, want at most catalog-max + 32 MiB = %d MiB", rise>>20, (catalogCap+slack)>>20)
	}
}

// Row 7: `Range: bytes=0-99` on a miss of a catalog-listed object whose
// upstream copy is tampered was answered 206 with the tampered bytes. Now
// a range of a listed object is answered from the verified object: 502
// digest_mismatch for a tampered one (and nothing stored), 206 for a good
// one.
func TestTamperedListedRangeNeverSucceeds(t *testing.T) {
	t.Parallel()
	bad, good := randomBytes(71, 1<<20), randomBytes(72, 1<<20) // above the 64 KiB verified before the status line
	tr := publishTree(t, map[string][]byte{"software/linux-amd64/1.0/bad.bin": bad, "software/linux-amd64/1.0/good.bin": good})
	evil := startEvil(t, tr.Dir, "/software/linux-amd64/1.0/bad.bin=wrong")
	relay := startRelayd(t, "--mode", "proxy", "--upstream", evil.URL, "--data-dir", t.TempDir(), "--root", tr.Root)
	proctest.Eventually(t, 20*time.Second, "the proxy to hold the catalog", func() error {
		if a := do(http.MethodGet, relay.URL+"/-/readyz", 1<<20); a.Status != http.StatusOK {
			return fmt.Errorf("readyz %d %s", a.Status, a.Body)
		}
		return nil
	})
	etag := digest.FromBytes(bad).ETag()
	const badPath = "/software/linux-amd64/1.0/bad.bin"
	for i, hdr := range [][]string{
		{"Range", "bytes=0-99"},
		{"Range", "bytes=0-99"}, // again: nothing was stored, a new fill
		{"Range", "bytes=524288-524387"},
		{"Range", "bytes=-100"},
		{"Range", "bytes=0-99", "If-Range", etag},
	} {
		a := do(http.MethodGet, relay.URL+badPath, 2<<20, hdr...)
		if (a.Status == http.StatusPartialContent || a.Status == http.StatusOK) && a.Err == nil {
			t.Errorf("request %d %q for a tampered listed object: a complete %d of %d bytes (tampered: %v)", i+1, hdr, a.Status, len(a.Body),
				!bytes.Contains(bad, a.Body))
		}
		if a.Status != http.StatusBadGateway || errorCode(a.Body) != "digest_mismatch" {
			t.Errorf("request %d %q: status %d, code %q, err %v; want 502 digest_mismatch", i+1, hdr, a.Status, errorCode(a.Body), a.Err)
		}
	}
	if n := proctest.CountRequests(evil.Log(), http.MethodGet, badPath); n < 5 {
		t.Errorf("the upstream was asked %d times for the tampered object, want 5 (nothing of it stored)", n)
	}
	// The whole object: never completed.
	if a := do(http.MethodGet, relay.URL+badPath, 2<<20); a.Err == nil && a.Status == http.StatusOK {
		t.Errorf("a whole GET of the tampered object completed with %d bytes", len(a.Body))
	}

	// A good listed object on a miss: the range once it is verified.
	a := do(http.MethodGet, relay.URL+"/software/linux-amd64/1.0/good.bin", 1<<20, "Range", "bytes=1000-1099")
	if a.Status != http.StatusPartialContent || !bytes.Equal(a.Body, good[1000:1100]) || a.Header.Get("X-Relay-Cache") != "MISS" {
		t.Errorf("range of a good listed miss: status %d, %s, %d bytes (right: %v); want 206 MISS with the bytes",
			a.Status, a.Header.Get("X-Relay-Cache"), len(a.Body), bytes.Equal(a.Body, good[1000:1100]))
	}
}
