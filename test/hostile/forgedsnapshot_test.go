package hostile

// Attack finding 4 (issue 11), for TUF metadata (issue 13): a forged
// metadata file of exactly catalog-max bytes, chunked (no Content-Length),
// cost a relay and an agent about twice the cap. The file is
// 1.snapshot.json behind a genuine timestamp, which gives the snapshot's
// signed length and sha256: a relay or agent reads no more than that
// length (a few hundred bytes here), so RSS rises by at most 32 MiB
// whatever catalog-max is (64 MiB here; a body of unknown length beyond
// the signed one would still be spooled to disk, not held twice).

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relayd/relayd/internal/proctest"
)

// forgedCap is the catalog-max of these tests: large enough that two
// copies (128 MiB) stand clear of one copy plus the slack (96 MiB).
const forgedCap = 64 << 20

// forgedCatalog serves, on a real listener, tr's genuine metadata except
// 1.snapshot.json: a file of exactly size bytes that does not verify,
// chunked (no Content-Length); or 404 for everything while forged is
// false. gets counts the metadata GETs, snapGets those of the forged file.
type forgedCatalog struct {
	URL            string
	forged         atomic.Bool
	gets, snapGets atomic.Int64
}

func startForgedCatalog(t *testing.T, tr *tree, size int) *forgedCatalog {
	t.Helper()
	body := []byte(`{"signed":{"_type":"snapshot","spec_version":"1.0.31","version":1,"expires":"2036-01-01T00:00:00Z","meta":{`)
	for i := 0; len(body) < size; i++ {
		body = fmt.Appendf(body, `"forged-%09d.json":{"version":1},`, i)
	}
	body = body[:size]
	f := &forgedCatalog{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, "/-/tuf/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		f.gets.Add(1)
		if !f.forged.Load() {
			http.NotFound(w, r)
			return
		}
		if name != "1.snapshot.json" {
			http.ServeFile(w, r, filepath.Join(tr.Dir, "-", "tuf", filepath.Base(name)))
			return
		}
		f.snapGets.Add(1)
		w.Header().Set("Content-Type", "application/json")
		rc := http.NewResponseController(w)
		for b := body; len(b) > 0; {
			n := min(len(b), 1<<20)
			if _, err := w.Write(b[:n]); err != nil {
				return
			}
			if err := rc.Flush(); err != nil { // chunked: no length is ever sent
				return
			}
			b = b[n:]
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	f.URL = "http://" + ln.Addr().String()
	return f
}

// noSpoolLeft fails the test if dir holds a catalog spool file.
func noSpoolLeft(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Errorf("read %s: %v", dir, err)
		return
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), "catalog-") {
			t.Errorf("spool file %s left in %s", e.Name(), dir)
		}
	}
}

// A relay (proxy, --root) whose upstream sends the forged snapshot of
// exactly catalog-max bytes on every retry: it reads the snapshot's signed
// length only, RSS rises by at most 32 MiB over the relay at rest (not
// catalog-max), and no spool file is left.
func TestForgedMaxSnapshotRelayRSS(t *testing.T) {
	t.Parallel()
	tr := publishTree(t, map[string][]byte{"security/kb-41.patch": randomBytes(41, 1000)})
	up := startForgedCatalog(t, tr, forgedCap)
	dataDir := t.TempDir()
	relay := startRelayd(t, "--mode", "proxy", "--upstream", up.URL, "--data-dir", dataDir, "--root", tr.Root,
		"--catalog-max", "64MiB", "--mirror-interval", "1s")
	proctest.Eventually(t, 20*time.Second, "the relay to ask for the metadata twice", func() error {
		if n := up.gets.Load(); n < 2 {
			return fmt.Errorf("%d metadata GETs", n)
		}
		return nil
	})
	base, err := proctest.RSS(relay.Pid())
	if err != nil {
		t.Fatal(err)
	}
	peak := rssPeak(t, relay.Pid())
	up.forged.Store(true)
	before := up.snapGets.Load()
	// Syncs are serial: the GET after the tries-th starts once that body
	// was read and refused, so tries whole reads lie inside the window.
	const tries = 3
	proctest.Eventually(t, 90*time.Second, fmt.Sprintf("%d reads of the forged snapshot", tries), func() error {
		if n := up.snapGets.Load() - before; n < tries+1 {
			return fmt.Errorf("%d so far", n)
		}
		return nil
	})
	rise := peak() - base
	t.Logf("relay RSS %d MiB at rest, peak rise %d MiB over %d forged snapshots of exactly catalog-max (%d MiB)", base>>20, rise>>20, tries, forgedCap>>20)
	if rise > slack {
		t.Errorf("relay RSS rose by %d MiB, want at most 32 MiB (the snapshot read at its signed length, not at catalog-max %d MiB)", rise>>20, forgedCap>>20)
	}
	if n := strings.Count(relay.Log(), "1.snapshot.json"); n < tries {
		t.Errorf("the relay logged %d refusals of the forged snapshot, want at least %d (is it read whole?)", n, tries)
	}
	noSpoolLeft(t, filepath.Join(dataDir, "tmp"))
}

// The agent side: `relayd fetch` against the same upstream reads the
// snapshot's signed length only: it peaks at most 32 MiB above the same
// command against a 404, and leaves no spool file in its state directory.
func TestForgedMaxSnapshotAgentRSS(t *testing.T) {
	t.Parallel()
	tr := publishTree(t, map[string][]byte{"security/kb-42.patch": randomBytes(42, 1000)})
	fetch := func(forged bool) (peak, gets int64, out string) {
		up := startForgedCatalog(t, tr, forgedCap)
		up.forged.Store(forged)
		out = t.TempDir()
		argv := []string{relaydBin, "fetch", "--relay", up.URL, "--root", tr.Root, "--out", out,
			"--catalog-max", "64MiB", "--retry-budget", "4s", "--quiet", "security/kb-42.patch"}
		p := proctest.Start(t, "fetch", argv, nil, "")
		stop := rssPeak(t, p.Pid())
		if exited, _ := p.WaitExit(90 * time.Second); !exited {
			t.Fatalf("relayd fetch (forged %v) did not give up", forged)
		}
		if p.WaitErr() == nil {
			t.Fatalf("relayd fetch (forged %v) succeeded", forged)
		}
		return stop(), up.snapGets.Load(), out
	}
	control, _, _ := fetch(false)
	peak, gets, out := fetch(true)
	rise := peak - control
	t.Logf("agent peak RSS %d MiB against a forged snapshot of exactly catalog-max (%d reads), %d MiB against a 404 (cap %d MiB)",
		peak>>20, gets, control>>20, forgedCap>>20)
	if gets < 1 {
		t.Fatal("the agent never read the forged snapshot")
	}
	if rise > slack {
		t.Errorf("agent RSS rose by %d MiB, want at most 32 MiB (the snapshot read at its signed length, not at catalog-max %d MiB)", rise>>20, forgedCap>>20)
	}
	if st := filepath.Join(out, ".relayd-agent"); dirExists(st) {
		noSpoolLeft(t, st)
	}
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
