package e2e

// Mirror mode and the signed catalog, end to end: real `relayd keygen`,
// `relayd publish`, `relayd sync` and `relayd serve` processes (origin,
// mirror, proxy) on 127.0.0.1.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/tufclient"
)

// TestMirrorFullCopy: a mirror copies a published tree from a relayd
// origin, serves it whole (dedup by digest) once the origin is gone, and
// answers 404 for what the catalog does not list.
func TestMirrorFullCopy(t *testing.T) {
	t.Parallel()
	files := standardTree()
	tree, _, root := publishedTree(t, files)
	catFile := readFile(t, timestampFile(tree))

	origin := startRelayd(t, "--mode", "origin", "--root", tree)
	dataDir := t.TempDir()
	mirror := startRelayd(t, "--mode", "mirror", "--upstream", origin.URL, "--root", root, "--data-dir", dataDir, "--admin", "127.0.0.1:0")

	c := newClient()
	wantBody(t, get(t, c, http.MethodGet, origin.URL+"/-/tuf/timestamp.json"), catFile, "origin timestamp.json")
	waitCatalog(t, mirror, catFile, 30*time.Second)
	// The mirror's /metrics counts what it took from the upstream: every
	// distinct blob once.
	var distinct float64
	seen := map[string]bool{}
	for _, b := range files {
		if h := sha(b); !seen[h] {
			seen[h] = true
			distinct += float64(len(b))
		}
	}
	admin := "http://" + mirror.WaitLogAddr(t, "admin listening")
	m := get(t, c, http.MethodGet, admin+"/metrics").body
	if v, ok := metric(m, "relayd_upstream_bytes_total"); !ok || v != distinct {
		t.Errorf("mirror relayd_upstream_bytes_total = %v (present %v), want %v (the distinct blobs)", v, ok, distinct)
	}
	// Its report (what its parents' tree shows) says the same.
	var view struct {
		Members []struct {
			Cache struct {
				UpstreamBytes float64 `json:"upstream_bytes"`
			} `json:"cache"`
		} `json:"members"`
	}
	if err := json.Unmarshal(get(t, c, http.MethodGet, admin+"/v1/tree").body, &view); err != nil || len(view.Members) != 1 ||
		view.Members[0].Cache.UpstreamBytes != distinct {
		t.Errorf("mirror /v1/tree: %+v (%v), want its upstream bytes %v", view, err, distinct)
	}

	// Every distinct digest crossed the WAN once; the two paths with the
	// same bytes were fetched once between them.
	gets := objectGets(origin.Log())
	if dups := gets["/software/linux-amd64/1.0/LICENSE"] + gets["/software/win-amd64/1.0/LICENSE"]; dups != 1 {
		t.Errorf("the two LICENSE paths (identical bytes) were fetched %d times from the origin, want 1", dups)
	}
	for p, n := range gets {
		if n > 1 {
			t.Errorf("origin served GET %s %d times, want at most 1", p, n)
		}
	}
	if total := sumCounts(gets); total != len(files)-1 {
		t.Errorf("origin served %d object GETs, want %d (30 objects, one pair of identical bytes): %v", total, len(files)-1, gets)
	}

	// SIGKILL: the origin is simply gone. (A SIGTERM'd relayd may take
	// up to ~5.5s to exit while the mirror holds a pre-dialed, never used
	// connection to it: net/http's Shutdown waits 5s for StateNew
	// connections.)
	origin.Kill(t)
	if _, err := tryGet(c, http.MethodGet, origin.URL+"/-/tuf/timestamp.json"); err == nil {
		t.Fatal("the origin still answers after it was stopped")
	}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		r := get(t, c, http.MethodGet, mirror.URL+"/"+p)
		wantObject(t, r, files[p], "mirror GET /"+p)
		if et, want := r.header.Get("Etag"), `"sha256:`+sha(files[p])+`"`; et != want {
			t.Errorf("mirror GET /%s: ETag %s, want %s", p, et, want)
		}
	}
	wantBody(t, get(t, c, http.MethodGet, mirror.URL+"/-/tuf/timestamp.json"), catFile, "mirror timestamp.json with the origin down")
	wantJSONError(t, get(t, c, http.MethodGet, mirror.URL+"/security/2026/not-published.patch"), http.StatusNotFound, "not_found", "unlisted path")
	wantJSONError(t, get(t, c, http.MethodGet, mirror.URL+"/software/linux-amd64/1.0"), http.StatusNotFound, "not_found", "a directory of the tree")
	if n := checkBlobs(t, dataDir); n != len(files)-1 {
		t.Errorf("DATA/blobs holds %d blobs, want %d (one per distinct digest)", n, len(files)-1)
	}
}

// TestMirrorSecondGeneration: a new generation that changes one object
// costs one object GET at the origin, through the `relayd sync` CLI; an
// unchanged tree publishes no new generation.
func TestMirrorSecondGeneration(t *testing.T) {
	t.Parallel()
	files := standardTree()
	tree, keys, root := publishedTree(t, files)
	gen1 := readFile(t, timestampFile(tree))

	origin := startRelayd(t, "--mode", "origin", "--root", tree)
	admin, dataDir := freeAddr(t), t.TempDir()
	mirror := startRelayd(t, "--mode", "mirror", "--upstream", origin.URL, "--root", root,
		"--data-dir", dataDir, "--admin", admin)
	waitCatalog(t, mirror, gen1, 30*time.Second)
	before := objectGets(origin.Log())
	catGets := countRequests(origin.Log(), http.MethodGet, "/-/tuf/timestamp.json")

	const changed = "security/2026/kb-003.patch"
	newBytes := makeData(4242, 7777)
	writeFiles(t, tree, map[string][]byte{changed: newBytes})
	publish(t, tree, keys)
	gen2 := readFile(t, timestampFile(tree))
	if g := tsGeneration(gen2); g != 2 {
		t.Fatalf("relayd publish after a change wrote generation %d, want 2", g)
	}

	stdout, stderr, err := runRelayd(t, 30*time.Second, "sync", "--follow", "--admin", "http://"+admin)
	if err != nil {
		t.Fatalf("relayd sync --follow: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	t.Logf("relayd sync --follow:\n%s", stdout)
	if st := getSync(t, admin); st.State != "in-sync" || st.Generation != 2 {
		t.Errorf("after relayd sync --follow exited: state %q generation %d, want in-sync 2", st.State, st.Generation)
	}
	wantBody(t, get(t, newClient(), http.MethodGet, mirror.URL+"/-/tuf/timestamp.json"), gen2, "mirror timestamp.json after the sync")

	eventually(t, 5*time.Second, "the origin to log the GET of the changed object", func() error {
		if n := objectGets(origin.Log())["/"+changed]; n != before["/"+changed]+1 {
			return fmt.Errorf("%d GETs of /%s, want %d", n, changed, before["/"+changed]+1)
		}
		return nil
	})
	after := objectGets(origin.Log())
	wantGets := maps.Clone(before)
	wantGets["/"+changed]++
	if !maps.Equal(after, wantGets) {
		t.Errorf("origin object GETs for generation 2:\n got %v\nwant %v (one more GET, of /%s)", diffCounts(before, after), map[string]int{"/" + changed: 1}, changed)
	}
	if n := countRequests(origin.Log(), http.MethodGet, "/-/tuf/timestamp.json"); n <= catGets {
		t.Errorf("origin logged %d GETs of timestamp.json, no more than before the sync (%d)", n, catGets)
	}

	c := newClient()
	wantObject(t, get(t, c, http.MethodGet, mirror.URL+"/"+changed), newBytes, "changed object after generation 2")
	for _, p := range []string{"security/2026/kb-001.patch", "software/win-amd64/1.0/agent-1.0.msi"} {
		wantObject(t, get(t, c, http.MethodGet, mirror.URL+"/"+p), files[p], "unchanged object "+p)
	}

	// The old bytes of the changed object are kept one generation,
	// unpinned, as the dictionary of deltas to children (issue 16).
	if n := checkBlobs(t, dataDir); n != len(files) {
		t.Errorf("DATA/blobs holds %d blobs after generation 2, want %d (the replaced blob kept one generation)", n, len(files))
	}

	// Publishing the same tree again keeps the generation.
	publish(t, tree, keys)
	if g := tsGeneration(readFile(t, timestampFile(tree))); g != 2 {
		t.Errorf("relayd publish of an unchanged tree wrote generation %d, want 2", g)
	}
	stdout, stderr, err = runRelayd(t, 30*time.Second, "sync", "--follow", "--admin", "http://"+admin)
	if err != nil {
		t.Fatalf("second relayd sync --follow: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	if d := diffCounts(after, objectGets(origin.Log())); len(d) != 0 {
		t.Errorf("a sync with nothing new fetched objects from the origin: %v", d)
	}
	stdout, stderr, err = runRelayd(t, 30*time.Second, "sync", "--status", "--json", "--admin", "http://"+admin)
	if err != nil {
		t.Fatalf("relayd sync --status --json: %v\n%s", err, stderr)
	}
	var st syncStatus
	if err := json.Unmarshal([]byte(stdout), &st); err != nil || st.Generation != 2 || st.State != "in-sync" {
		t.Errorf("relayd sync --status --json printed %q (%v), want state in-sync, generation 2", stdout, err)
	}
}

// TestMirrorKillMidSyncNoDoubleDownload kills a mirror with SIGKILL in the
// middle of a generation (some objects done, a 24 MiB one half there),
// restarts it on the same data dir and checks that nothing is downloaded
// twice, the large object resumes with Range where it stopped, and no
// reader ever sees a catalog whose objects are not all served.
func TestMirrorKillMidSyncNoDoubleDownload(t *testing.T) {
	// Not parallel: the origin's throttling and the kill point are timed.
	gen1 := map[string][]byte{}
	for i := range 8 {
		gen1[fmt.Sprintf("security/2025/kb-1%02d.patch", i)] = makeData(uint64(500+i), 20<<10+i*5000)
	}
	const (
		largePath = "security/2026/0000-rollup.bin" // sorts before the other new objects
		largeSize = 24 << 20
		holdAt    = 8 << 20
	)
	large := makeData(600, largeSize)
	small := map[string][]byte{}
	for i := range 6 {
		small[fmt.Sprintf("security/2026/kb-2%02d.patch", i)] = makeData(uint64(610+i), 64<<10+i*7000)
	}
	for i := range 8 {
		small[fmt.Sprintf("software/linux-amd64/2.0/pkg-%02d.deb", i)] = makeData(uint64(630+i), 80<<10+i*6000)
	}

	tree, keys, root := publishedTree(t, gen1)
	org := startRangeOrigin(t, timestampFile(tree))
	for p, b := range gen1 {
		org.set(p, newObject(b, ""))
	}
	gen1Cat := readFile(t, timestampFile(tree))

	listen, admin, dataDir := freeAddr(t), freeAddr(t), t.TempDir()
	args := []string{"--mode", "mirror", "--upstream", org.URL, "--root", root, "--data-dir", dataDir,
		"--listen", listen, "--admin", admin, "--mirror-workers", "2", "--upstream-stall-timeout", "60s"}
	mirror := startRelayd(t, args...)
	reader := startGenReader(t, "http://"+listen, root)
	waitCatalog(t, mirror, gen1Cat, 30*time.Second)

	// Generation 2: the large object and 14 small ones, all throttled.
	all2 := maps.Clone(small)
	all2[largePath] = large
	writeFiles(t, tree, all2)
	if publish(t, tree, keys); tsGeneration(readFile(t, timestampFile(tree))) != 2 {
		t.Fatal("publish did not write generation 2")
	}
	gen2Cat := readFile(t, timestampFile(tree))
	big := newObject(large, "")
	big.chunk, big.delay, big.holdAt = 512<<10, time.Millisecond, holdAt
	org.set(largePath, big)
	for p, b := range small {
		o := newObject(b, "")
		o.chunk, o.delay = 16<<10, 10*time.Millisecond
		org.set(p, o)
	}

	// Gate 1: once the large object is held and two small ones are done,
	// the next small request waits (before any byte) until the kill.
	// Gate 2: the restarted mirror's Range request for the large object
	// waits until the test has looked at the restarted mirror.
	var (
		gateOnce, resumeOnce        sync.Once
		gateReached, gateRelease    = make(chan struct{}), make(chan struct{}) // gateRelease is never closed
		resumeArrived, resumeResume = make(chan struct{}), make(chan struct{})
		gated                       atomic.Pointer[string]
	)
	org.setHook(func(r *http.Request) <-chan struct{} {
		p := strings.TrimPrefix(r.URL.Path, "/")
		if p == largePath && r.Header.Get("Range") != "" {
			var ch <-chan struct{}
			resumeOnce.Do(func() { close(resumeArrived); ch = resumeResume })
			return ch
		}
		if _, ok := small[p]; !ok {
			return nil
		}
		select {
		case <-big.held:
		default:
			return nil
		}
		if org.completed(slices.Collect(maps.Keys(small))) < 2 {
			return nil
		}
		var ch <-chan struct{}
		gateOnce.Do(func() { gated.Store(&p); close(gateReached); ch = gateRelease })
		return ch
	})
	resp, err := newClient().Post("http://"+admin+"/v1/sync", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	waitChan(t, gateReached, 20*time.Second, "the large object to be held and two small ones done")
	doneSmall := org.completedSet(slices.Collect(maps.Keys(small)))
	var expectBytes int64
	eventually(t, 20*time.Second, "the mirror to have written the first 8 MiB of the large object", func() error {
		st := getSync(t, admin)
		missing := int64(largeSize - holdAt)
		for p, b := range small {
			if !doneSmall[p] {
				missing += int64(len(b))
			}
		}
		expectBytes = st.BytesTotal - missing
		if st.State != "syncing" || st.BytesDone < expectBytes || st.ObjectsDone != int64(len(gen1)+len(doneSmall)) {
			return fmt.Errorf("progress %+v, want syncing with bytes_done %d and objects_done %d", st, expectBytes, len(gen1)+len(doneSmall))
		}
		return nil
	})
	wantBody(t, get(t, newClient(), http.MethodGet, mirror.URL+"/-/tuf/timestamp.json"), gen1Cat, "mirror timestamp.json during the sync")
	t.Logf("SIGKILL: large object held at %d of %d bytes, %d of %d small objects done, small %s waiting at the gate",
		holdAt, largeSize, len(doneSmall), len(small), *gated.Load())

	reader.down.Store(true)
	mirror.Kill(t)
	// gateRelease and big.release stay open: the held handlers end with
	// their connections, without writing into them.

	mirror2 := startRelayd(t, args...)
	// The restored generation 1 is served before generation 2 completes.
	eventually(t, 20*time.Second, "the restarted mirror to ask for the rest of the large object with Range", func() error {
		select {
		case <-resumeArrived:
			return nil
		default:
		}
		if st := getSync(t, admin); st.Generation == 2 {
			return stopErr{Err: fmt.Errorf("generation 2 went live without a Range request for %s; requests: %v", largePath, org.requests("/"+largePath))}
		}
		return fmt.Errorf("no Range request yet")
	})
	wantStatus(t, get(t, newClient(), http.MethodGet, mirror2.URL+"/-/readyz"), http.StatusOK, "restarted mirror /-/readyz")
	wantBody(t, get(t, newClient(), http.MethodGet, mirror2.URL+"/-/tuf/timestamp.json"), gen1Cat, "restarted mirror timestamp.json (generation 1, restored)")
	reader.down.Store(false)
	n1 := reader.count(1)
	eventually(t, 20*time.Second, "a reader round over generation 1 on the restarted mirror", func() error {
		if reader.count(1) <= n1 {
			return fmt.Errorf("no complete round yet")
		}
		return nil
	})
	close(resumeResume)

	waitCatalog(t, mirror2, gen2Cat, 30*time.Second)
	eventually(t, 30*time.Second, "a reader round over generation 2", func() error {
		if reader.count(2) == 0 {
			return fmt.Errorf("no complete round yet")
		}
		return nil
	})
	reader.halt()
	reader.check(t)
	if st := getSync(t, admin); st.State != "in-sync" || st.Generation != 2 {
		t.Errorf("sync status after the restart: %+v, want in-sync generation 2", st)
	}

	// Nothing was downloaded twice.
	for p := range gen1 {
		if reqs := org.requests("/" + p); len(reqs) != 1 {
			t.Errorf("generation 1 object %s: %d GETs, want 1: %v", p, len(reqs), reqs)
		}
	}
	gatedPath := *gated.Load()
	for p, b := range small {
		reqs := org.requests("/" + p)
		full := 0
		for _, r := range reqs {
			if r.rng != "" {
				t.Errorf("small object %s: Range request %v", p, r)
			}
			if r.sent == int64(len(b)) {
				full++
			}
		}
		switch {
		case full != 1:
			t.Errorf("small object %s sent in full %d times, want 1: %v", p, full, reqs)
		case p == gatedPath && (len(reqs) != 2 || reqs[0].sent != 0):
			t.Errorf("small object %s (waiting at the kill): requests %v, want one with no bytes sent, then one whole", p, reqs)
		case p != gatedPath && len(reqs) != 1:
			t.Errorf("small object %s: %d GETs, want 1: %v", p, len(reqs), reqs)
		}
	}
	reqs := org.requests("/" + largePath)
	wantRange := "bytes=" + strconv.Itoa(holdAt) + "-"
	if len(reqs) != 2 || reqs[0].rng != "" || reqs[0].sent != holdAt || reqs[1].rng != wantRange || reqs[1].sent != largeSize-holdAt {
		t.Errorf("large object requests %v, want a plain GET that sent %d bytes, then Range %q that sent the other %d", reqs, holdAt, wantRange, largeSize-holdAt)
	}
	if len(reqs) > 1 {
		if start, ok := rangeStart(reqs[len(reqs)-1].rng); !ok || start <= 0 {
			t.Errorf("large object: the resumed request's Range %q does not start past 0", reqs[len(reqs)-1].rng)
		}
	}

	c := newClient()
	for p, b := range all2 {
		wantObject(t, get(t, c, http.MethodGet, mirror2.URL+"/"+p), b, "final copy of "+p)
	}
	checkBlobs(t, dataDir)
	if left := dirNames(t, filepath.Join(dataDir, "tmp")); len(left) != 0 {
		t.Errorf("DATA/tmp after the completed sync holds %v, want nothing", left)
	}
}

// TestMirrorRejectsTamperedAndForged: wrong bytes at the origin, a catalog
// signed by another key and a truncated catalog are all refused, and the
// live generation keeps being served.
func TestMirrorRejectsTamperedAndForged(t *testing.T) {
	t.Parallel()
	files := map[string][]byte{}
	for i := range 8 {
		files[fmt.Sprintf("security/2026/kb-%03d.patch", i)] = makeData(uint64(700+i), 10<<10+i*3000)
	}
	const victim = "security/2026/kb-002.patch"
	tree, keys, root := publishedTree(t, files)
	catPath := timestampFile(tree)
	gen1 := readFile(t, catPath)
	origin := startRelayd(t, "--mode", "origin", "--root", tree)
	admin, dataDir := freeAddr(t), t.TempDir()
	mirror := startRelayd(t, "--mode", "mirror", "--upstream", origin.URL, "--root", root, "--data-dir", dataDir, "--admin", admin)
	waitCatalog(t, mirror, gen1, 30*time.Second)
	c := newClient()

	// (a) Generation 2 changes the victim; the origin then serves other
	// bytes of the same size for it.
	good := makeData(710, len(files[victim])+1000)
	tampered := makeData(711, len(good))
	writeFiles(t, tree, map[string][]byte{victim: good})
	publish(t, tree, keys)
	gen2 := readFile(t, catPath)
	if g := tsGeneration(gen2); g != 2 {
		t.Fatalf("publish wrote generation %d, want 2", g)
	}
	writeFiles(t, tree, map[string][]byte{victim: tampered})
	st := syncNow(t, admin)
	if st.State != "failed" || !strings.Contains(st.LastError, "digest") || st.Generation != 1 {
		t.Errorf("sync of generation 2 with tampered bytes: state %q generation %d last_error %q, want failed, 1, a digest mismatch", st.State, st.Generation, st.LastError)
	}
	t.Logf("(a) tampered object: %+v", st)
	wantBody(t, get(t, c, http.MethodGet, mirror.URL+"/-/tuf/timestamp.json"), gen1, "mirror timestamp.json after the failed sync")
	wantObject(t, get(t, c, http.MethodGet, mirror.URL+"/"+victim), files[victim], "victim after the failed sync (generation 1 bytes)")
	if blobNames(t, dataDir)[sha(tampered)] {
		t.Errorf("the tampered bytes were stored as a blob")
	}
	checkBlobs(t, dataDir)

	// (a2) The origin is repaired without a new publish: the next sync
	// must complete generation 2.
	writeFiles(t, tree, map[string][]byte{victim: good})
	st = syncNow(t, admin)
	if st.State != "in-sync" || st.Generation != 2 {
		t.Errorf("after the origin serves the right bytes again (same catalog file: 304), a sync reports state %q generation %d (target %d, last_error %q), want in-sync generation 2: a failed generation must be retried",
			st.State, st.Generation, st.Target, st.LastError)
	}
	live := get(t, c, http.MethodGet, mirror.URL+"/-/tuf/timestamp.json").body
	liveGen := tsGeneration(live)
	liveVictim := files[victim]
	if liveGen == 2 {
		liveVictim = good
	}
	wantObject(t, get(t, c, http.MethodGet, mirror.URL+"/"+victim), liveVictim, "victim after the repaired sync")

	// (b) A repository made with other keys, with a higher generation and
	// other bytes for the victim, served in place of the genuine one.
	evil := makeData(712, 9000)
	forgedFiles := maps.Clone(files)
	forgedFiles[victim] = evil
	forgedTree, forgedKeys, _ := publishedTree(t, forgedFiles)
	for g := 2; g <= 5; g++ {
		writeFiles(t, forgedTree, map[string][]byte{"security/2026/zz-filler.patch": makeData(uint64(720+g), 100)})
		publish(t, forgedTree, forgedKeys)
	}
	forged := readFile(t, timestampFile(forgedTree))
	if g := tsGeneration(forged); g <= liveGen {
		t.Fatalf("forged timestamp has generation %d, want more than %d", g, liveGen)
	}
	writeFiles(t, tree, map[string][]byte{victim: evil})
	genuine := filepath.Join(t.TempDir(), "tuf")
	if err := os.Rename(filepath.Dir(catPath), genuine); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Dir(timestampFile(forgedTree)), filepath.Dir(catPath)); err != nil {
		t.Fatal(err)
	}
	before := getSync(t, admin)
	st = syncNow(t, admin)
	// At least once: the origin also announces the new file on its event
	// stream, and the mirror syncs at that push too.
	if st.RejectedCatalogs < before.RejectedCatalogs+1 || st.Generation != liveGen || st.State != "failed" {
		t.Errorf("sync against a repository signed by other keys: %+v, want failed, rejected_catalogs at least %d, generation %d", st, before.RejectedCatalogs+1, liveGen)
	}
	t.Logf("(b) forged catalog: %+v", st)
	wantBody(t, get(t, c, http.MethodGet, mirror.URL+"/-/tuf/timestamp.json"), live, "mirror timestamp.json after the forged catalog")
	wantObject(t, get(t, c, http.MethodGet, mirror.URL+"/"+victim), liveVictim, "victim after the forged catalog")

	// (c) The genuine repository with a truncated timestamp, synced with
	// the CLI: it must fail.
	if err := os.RemoveAll(filepath.Dir(catPath)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(genuine, filepath.Dir(catPath)); err != nil {
		t.Fatal(err)
	}
	writeAtomicFile(t, catPath, gen2[:len(gen2)/2])
	before = st
	stdout, stderr, err := runRelayd(t, 30*time.Second, "sync", "--follow", "--admin", "http://"+admin)
	if err == nil || !strings.Contains(stderr, "sync failed") {
		t.Errorf("relayd sync --follow against a truncated catalog: err %v, stderr %q, want a non-zero exit and \"sync failed\"\n%s", err, stderr, stdout)
	}
	st = getSync(t, admin)
	if st.RejectedCatalogs < before.RejectedCatalogs+1 || st.Generation != liveGen || st.State != "failed" {
		t.Errorf("sync against a truncated catalog: %+v, want failed, rejected_catalogs at least %d, generation %d", st, before.RejectedCatalogs+1, liveGen)
	}
	t.Logf("(c) truncated catalog: %+v", st)
	wantBody(t, get(t, c, http.MethodGet, mirror.URL+"/-/tuf/timestamp.json"), live, "mirror timestamp.json after the truncated catalog")
	for p, b := range files {
		if p == victim {
			b = liveVictim
		}
		r := get(t, c, http.MethodGet, mirror.URL+"/"+p)
		wantObject(t, r, b, "after the rejected catalogs: "+p)
		if sha(r.body) == sha(evil) || sha(r.body) == sha(tampered) {
			t.Errorf("%s served attacker bytes", p)
		}
	}

	// (d) The genuine catalog and bytes are back: generation 2 goes live.
	writeFiles(t, tree, map[string][]byte{victim: good})
	writeAtomicFile(t, catPath, gen2)
	st = syncNow(t, admin)
	if st.State != "in-sync" || st.Generation != 2 {
		t.Errorf("sync with the genuine catalog restored: %+v, want in-sync generation 2", st)
	}
	wantObject(t, get(t, c, http.MethodGet, mirror.URL+"/"+victim), good, "victim in generation 2")
	if blobNames(t, dataDir)[sha(tampered)] || blobNames(t, dataDir)[sha(evil)] {
		t.Errorf("attacker bytes were stored as a blob")
	}
}

// TestMirrorIncludeFilter: --mirror-include security/** downloads and
// serves the security objects only.
func TestMirrorIncludeFilter(t *testing.T) {
	t.Parallel()
	files := standardTree()
	tree, _, root := publishedTree(t, files)
	catFile := readFile(t, timestampFile(tree))
	origin := startRelayd(t, "--mode", "origin", "--root", tree)
	mirror := startRelayd(t, "--mode", "mirror", "--upstream", origin.URL, "--root", root,
		"--data-dir", t.TempDir(), "--mirror-include", "security/**")
	waitCatalog(t, mirror, catFile, 30*time.Second)

	gets := objectGets(origin.Log())
	c := newClient()
	for _, p := range slices.Sorted(maps.Keys(files)) {
		n := gets["/"+p]
		r := get(t, c, http.MethodGet, mirror.URL+"/"+p)
		if strings.HasPrefix(p, "security/") {
			if n != 1 {
				t.Errorf("origin served %s %d times, want 1", p, n)
			}
			wantObject(t, r, files[p], "included "+p)
			continue
		}
		if n != 0 {
			t.Errorf("origin served %s (not included) %d times, want 0", p, n)
		}
		wantJSONError(t, r, http.StatusNotFound, "not_found", "not included "+p)
	}
	if extra := sumCounts(gets) - 12; extra != 0 {
		t.Errorf("origin object GETs %v, want the 12 security objects only", gets)
	}
}

// TestProxyWithCatalogPerKindPolicy: a proxy with --root and
// --mirror-include security/** mirrors security objects at once, proxies
// software on demand, and refuses software bytes the catalog does not list.
func TestProxyWithCatalogPerKindPolicy(t *testing.T) {
	t.Parallel()
	files := standardTree()
	tree, _, root := publishedTree(t, files)
	catFile := readFile(t, timestampFile(tree))
	origin := startRelayd(t, "--mode", "origin", "--root", tree)
	proxy := startRelayd(t, "--mode", "proxy", "--upstream", origin.URL, "--root", root,
		"--data-dir", t.TempDir(), "--mirror-include", "security/**")

	var security, software []string
	for _, p := range slices.Sorted(maps.Keys(files)) {
		switch {
		case strings.HasPrefix(p, "security/"):
			security = append(security, p)
		case strings.HasPrefix(p, "software/"):
			software = append(software, p)
		}
	}
	eventually(t, 30*time.Second, "the proxy to download every security object unasked", func() error {
		gets := objectGets(origin.Log())
		for _, p := range security {
			if gets["/"+p] != 1 {
				return fmt.Errorf("origin GETs of %s: %d, want 1", p, gets["/"+p])
			}
		}
		return nil
	})
	waitCatalog(t, proxy, catFile, 30*time.Second)
	gets := objectGets(origin.Log())
	for p, n := range gets {
		if !strings.HasPrefix(p, "/security/") {
			t.Errorf("origin served %s %d times before any client asked", p, n)
		}
	}

	asked := []string{"software/linux-amd64/1.0/LICENSE", "software/linux-amd64/1.0/agent-1.0.tar.gz", "software/win-amd64/1.0/tool-01.zip"}
	c := newClient()
	for _, p := range security[:3] {
		r := get(t, c, http.MethodGet, proxy.URL+"/"+p)
		wantObject(t, r, files[p], "security "+p)
		if r.cache() != "HIT" {
			t.Errorf("security %s: X-Relay-Cache %q, want HIT (mirrored)", p, r.cache())
		}
	}
	for _, p := range asked {
		r := get(t, c, http.MethodGet, proxy.URL+"/"+p)
		wantObject(t, r, files[p], "software "+p+" (first)")
		if r.cache() != "MISS" {
			t.Errorf("software %s first request: X-Relay-Cache %q, want MISS", p, r.cache())
		}
		r = get(t, c, http.MethodGet, proxy.URL+"/"+p)
		wantObject(t, r, files[p], "software "+p+" (second)")
		if r.cache() != "HIT" {
			t.Errorf("software %s second request: X-Relay-Cache %q, want HIT", p, r.cache())
		}
	}
	// A consistent target name (dir/<sha256>.name) of a proxied object is
	// the object, fetched once under its own path.
	hashedName := "software/win-amd64/1.0/" + sha(files["software/win-amd64/1.0/tool-02.zip"]) + ".tool-02.zip"
	wantObject(t, get(t, c, http.MethodGet, proxy.URL+"/"+hashedName), files["software/win-amd64/1.0/tool-02.zip"], "consistent target name via the proxy")
	asked = append(asked, "software/win-amd64/1.0/tool-02.zip")
	gets = objectGets(origin.Log())
	for _, p := range software {
		want := 0
		if slices.Contains(asked, p) {
			want = 1
		}
		if gets["/"+p] != want {
			t.Errorf("origin GETs of %s: %d, want %d", p, gets["/"+p], want)
		}
	}
	for _, p := range security {
		if gets["/"+p] != 1 {
			t.Errorf("origin GETs of %s: %d after clients asked, want still 1", p, gets["/"+p])
		}
	}

	// Software objects whose bytes change at the origin after publishing.
	// A cached one is immutable (listed): served from the cache, the
	// origin is not asked. The others must never reach a client whole.
	for _, tc := range []struct {
		name, path string
		bytes      []byte
		cached     bool
	}{
		{"cached", asked[1], makeData(802, len(files[asked[1]])), true},
		{"same size", "software/linux-amd64/1.0/lib-04.so", makeData(800, len(files["software/linux-amd64/1.0/lib-04.so"])), false},
		{"longer", "software/win-amd64/1.0/tool-03.zip", makeData(801, len(files["software/win-amd64/1.0/tool-03.zip"])+4096), false},
		{"shorter", "software/win-amd64/1.0/agent-1.0.msi", makeData(803, len(files["software/win-amd64/1.0/agent-1.0.msi"])-4096), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := objectGets(origin.Log())["/"+tc.path]
			writeFiles(t, tree, map[string][]byte{tc.path: tc.bytes})
			for i := range 2 {
				r, err := tryGet(c, http.MethodGet, proxy.URL+"/"+tc.path)
				t.Logf("request %d for %s: status %d, %d bytes, X-Relay-Cache %q, err %v", i+1, tc.path, r.status, len(r.body), r.cache(), err)
				if tc.cached {
					if err != nil {
						t.Fatalf("request %d for cached %s: %v", i+1, tc.path, err)
					}
					wantObject(t, r, files[tc.path], "cached "+tc.path+" after the origin changed")
					if r.cache() != "HIT" {
						t.Errorf("cached %s: X-Relay-Cache %q, want HIT (listed objects are not revalidated)", tc.path, r.cache())
					}
					continue
				}
				if err == nil && r.status == http.StatusOK {
					t.Errorf("request %d for tampered %s: a complete 200 of %d bytes (sha256 %s, the tampered bytes: %v)", i+1, tc.path, len(r.body), sha(r.body), bytes.Equal(r.body, tc.bytes))
				}
				if err == nil && r.status != http.StatusBadGateway {
					t.Errorf("request %d for tampered %s: status %d, want 502 or an aborted body", i+1, tc.path, r.status)
				}
				if bytes.Equal(r.body, tc.bytes) {
					t.Errorf("request %d for tampered %s: the client holds every tampered byte", i+1, tc.path)
				}
			}
			if tc.cached {
				if n := objectGets(origin.Log())["/"+tc.path]; n != before {
					t.Errorf("cached listed %s was fetched again from the origin (%d GETs, before %d)", tc.path, n, before)
				}
				return
			}
			// Both requests went to the origin: nothing wrong was cached.
			// (Go's client may repeat a GET once when the relay closes the
			// connection before a status line, hence "at least".)
			eventually(t, 5*time.Second, "both requests to reach the origin", func() error {
				if n := objectGets(origin.Log())["/"+tc.path]; n < before+2 {
					return fmt.Errorf("origin GETs of %s: %d, want at least %d", tc.path, n, before+2)
				}
				return nil
			})
		})
	}
}

// ---------------------------------------------------------------------------
// helpers: trees, keys and the relayd commands

// standardTree is 30 objects: security patches, two platforms of software
// (with 2–4 MiB packages and one file with the same bytes on both) and
// two other files.
func standardTree() map[string][]byte {
	files := map[string][]byte{}
	seed := uint64(100)
	add := func(p string, n int) {
		seed++
		files[p] = makeData(seed, n)
	}
	for i := 1; i <= 12; i++ {
		add(fmt.Sprintf("security/2026/kb-%03d.patch", i), 1000+i*3000)
	}
	add("software/linux-amd64/1.0/agent-1.0.tar.gz", 3<<20)
	add("software/win-amd64/1.0/agent-1.0.msi", 4<<20)
	add("software/win-amd64/1.0/setup-1.0.exe", 2<<20)
	for i := 1; i <= 6; i++ {
		add(fmt.Sprintf("software/linux-amd64/1.0/lib-%02d.so", i), 5000+i*11000)
	}
	for i := 1; i <= 5; i++ {
		add(fmt.Sprintf("software/win-amd64/1.0/tool-%02d.zip", i), 7000+i*13000)
	}
	license := makeData(99, 5000)
	files["software/linux-amd64/1.0/LICENSE"] = license
	files["software/win-amd64/1.0/LICENSE"] = license
	add("README.txt", 800)
	add("other/changelog.txt", 2500)
	return files
}

func writeFiles(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	for p, b := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// writeAtomicFile replaces path by rename, as a publisher would.
func writeAtomicFile(t testing.TB, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// freeAddr returns a 127.0.0.1 address that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// ---------------------------------------------------------------------------
// helpers: catalog, sync status, logs

// syncStatus is GET /v1/sync.
type syncStatus struct {
	State            string `json:"state"`
	Generation       uint64 `json:"generation"`
	Target           uint64 `json:"target"`
	ObjectsDone      int64  `json:"objects_done"`
	ObjectsTotal     int64  `json:"objects_total"`
	BytesDone        int64  `json:"bytes_done"`
	BytesTotal       int64  `json:"bytes_total"`
	Errors           int64  `json:"errors"`
	LastError        string `json:"last_error"`
	Finished         string `json:"finished"`
	RejectedCatalogs int64  `json:"rejected_catalogs"`
}

func getSync(t testing.TB, admin string) syncStatus {
	t.Helper()
	r := get(t, newClient(), http.MethodGet, "http://"+admin+"/v1/sync")
	var st syncStatus
	if r.status != http.StatusOK {
		t.Fatalf("GET /v1/sync: status %d %s", r.status, truncate(r.body))
	}
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatalf("GET /v1/sync: %v in %s", err, truncate(r.body))
	}
	return st
}

// syncNow triggers a sync with POST /v1/sync and waits for it to end.
func syncNow(t testing.TB, admin string) syncStatus {
	t.Helper()
	before := getSync(t, admin)
	resp, err := newClient().Post("http://"+admin+"/v1/sync", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/sync: status %d", resp.StatusCode)
	}
	var st syncStatus
	eventually(t, 30*time.Second, "the triggered sync to end", func() error {
		st = getSync(t, admin)
		if st.State == "syncing" || st.Finished == before.Finished {
			return fmt.Errorf("sync status %+v", st)
		}
		return nil
	})
	return st
}

// waitCatalog waits until p is ready and serves exactly want (a
// timestamp.json) at /-/tuf/timestamp.json.
func waitCatalog(t testing.TB, p *proc, want []byte, timeout time.Duration) {
	t.Helper()
	c := newClient()
	eventually(t, timeout, p.Name+" to serve the published catalog", func() error {
		if p.Exited() {
			return stopErr{Err: fmt.Errorf("%s exited: %v", p.Name, p.WaitErr())}
		}
		r, err := tryGet(c, http.MethodGet, p.URL+"/-/readyz")
		if err != nil {
			return err
		}
		if r.status != http.StatusOK {
			return fmt.Errorf("/-/readyz: %d %s", r.status, truncate(r.body))
		}
		r, err = tryGet(c, http.MethodGet, p.URL+"/-/tuf/timestamp.json")
		if err != nil {
			return err
		}
		if r.status != http.StatusOK || !bytes.Equal(r.body, want) {
			return fmt.Errorf("timestamp.json: status %d, %d bytes (want %d bytes, generation %d)", r.status, len(r.body), len(want), genOf(want))
		}
		return nil
	})
}

func genOf(b []byte) uint64 { return tsGeneration(b) }

func wantBody(t testing.TB, r response, want []byte, what string) {
	t.Helper()
	if r.status != http.StatusOK || !bytes.Equal(r.body, want) {
		t.Errorf("%s: status %d, %d bytes (generation %d), want 200 with %d bytes (generation %d)", what, r.status, len(r.body), genOf(r.body), len(want), genOf(want))
	}
}

func wantStatus(t testing.TB, r response, status int, what string) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: status %d, want %d; body %s", what, r.status, status, truncate(r.body))
	}
}

// objectGets counts the GETs in a relayd access log per object path
// (paths under /-/ left out).
func objectGets(logText string) map[string]int {
	out := map[string]int{}
	for _, m := range logLines(logText) {
		p, _ := m["path"].(string)
		if m["message"] == "request" && m["method"] == http.MethodGet && !strings.HasPrefix(p, "/-/") {
			out[p]++
		}
	}
	return out
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// diffCounts is after − before, without the zeros.
func diffCounts(before, after map[string]int) map[string]int {
	d := map[string]int{}
	for k, v := range after {
		if v != before[k] {
			d[k] = v - before[k]
		}
	}
	for k, v := range before {
		if _, ok := after[k]; !ok {
			d[k] = -v
		}
	}
	return d
}

// blobNames is the set of blob file names under DATA/blobs.
func blobNames(t testing.TB, dataDir string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	err := filepath.WalkDir(filepath.Join(dataDir, "blobs"), func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names[d.Name()] = true
		}
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return names
}

func rangeStart(h string) (int64, bool) {
	s, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return 0, false
	}
	s, _, _ = strings.Cut(s, "-")
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// ---------------------------------------------------------------------------
// helpers: a Range-capable, throttled origin

// rangeOrigin serves registered objects with Range support (http.ServeContent)
// through testObject's throttling and hold, and TREE/-/tuf/ as it is on
// disk at each request (catalog is its timestamp.json). It records every request and how many body bytes
// it sent.
type rangeOrigin struct {
	URL     string
	catalog string
	srv     *http.Server
	stop    chan struct{}

	mu      sync.Mutex
	objects map[string]*testObject
	etags   map[string]string // path → a strong ETag, as a static server sends
	reqs    []*originReq
	// hook, if set, is called before an object's response; a non-nil
	// channel holds the response (no byte sent) until it is closed.
	hook func(r *http.Request) <-chan struct{}
}

// originReq is one request the rangeOrigin got.
type originReq struct {
	path string
	rng  string
	sent int64 // body bytes written
}

func (r originReq) String() string {
	return fmt.Sprintf("{range %q sent %d}", r.rng, r.sent)
}

func startRangeOrigin(t testing.TB, catalogFile string) *rangeOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &rangeOrigin{URL: "http://" + ln.Addr().String(), catalog: catalogFile, stop: make(chan struct{}), objects: map[string]*testObject{},
		etags: map[string]string{}}
	o.srv = &http.Server{Handler: o, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = o.srv.Serve(ln) }()
	t.Cleanup(func() {
		close(o.stop)
		_ = o.srv.Close()
	})
	return o
}

func (o *rangeOrigin) set(path string, obj *testObject) {
	etag := fmt.Sprintf(`"%.16s-%x"`, sha(obj.data), len(obj.data)) // nginx-like
	o.mu.Lock()
	o.objects["/"+path] = obj
	o.etags["/"+path] = etag
	o.mu.Unlock()
}

func (o *rangeOrigin) setHook(h func(*http.Request) <-chan struct{}) {
	o.mu.Lock()
	o.hook = h
	o.mu.Unlock()
}

// requests returns copies of the requests for path.
func (o *rangeOrigin) requests(path string) []originReq {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []originReq
	for _, r := range o.reqs {
		if r.path == path {
			out = append(out, *r)
		}
	}
	return out
}

// completedSet says which of paths have been sent whole at least once.
func (o *rangeOrigin) completedSet(paths []string) map[string]bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	done := map[string]bool{}
	for _, p := range paths {
		obj := o.objects["/"+p]
		for _, r := range o.reqs {
			if obj != nil && r.path == "/"+p && r.rng == "" && r.sent == int64(len(obj.data)) {
				done[p] = true
			}
		}
	}
	return done
}

func (o *rangeOrigin) completed(paths []string) int { return len(o.completedSet(paths)) }

func (o *rangeOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &originReq{path: r.URL.Path, rng: r.Header.Get("Range")}
	o.mu.Lock()
	o.reqs = append(o.reqs, rec)
	obj, hook, etag := o.objects[r.URL.Path], o.hook, o.etags[r.URL.Path]
	o.mu.Unlock()
	if name, ok := strings.CutPrefix(r.URL.Path, "/-/tuf/"); ok {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(o.catalog), filepath.Base(name)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
		return
	}
	if obj == nil {
		http.NotFound(w, r)
		return
	}
	if hook != nil {
		if ch := hook(r); ch != nil {
			select {
			case <-ch:
			case <-r.Context().Done():
				return
			case <-o.stop:
				return
			}
		}
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", etag) // resumes are pinned to it (If-Range)
	tw := &throttledWriter{ResponseWriter: w, rc: http.NewResponseController(w), obj: obj, ctx: r.Context(), stop: o.stop,
		hold: rec.rng == "",
		count: func(n int) {
			o.mu.Lock()
			rec.sent += int64(n)
			o.mu.Unlock()
		}}
	http.ServeContent(tw, r, "", time.Time{}, bytes.NewReader(obj.data))
}

// throttledWriter writes a body in obj.chunk pieces with obj.delay
// between them and, if hold is set, stops at obj.holdAt (an offset in the
// object) until obj.release is closed.
type throttledWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	obj   *testObject
	ctx   context.Context
	stop  chan struct{}
	count func(int)
	hold  bool  // plain GETs hold; Range requests (resumes) do not
	off   int64 // object offset of the next byte
}

func (w *throttledWriter) WriteHeader(code int) {
	if cr := w.Header().Get("Content-Range"); code == http.StatusPartialContent && cr != "" {
		s := strings.TrimPrefix(cr, "bytes ")
		s, _, _ = strings.Cut(s, "-")
		w.off, _ = strconv.ParseInt(s, 10, 64)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *throttledWriter) Write(p []byte) (int, error) {
	obj, written := w.obj, 0
	for len(p) > 0 {
		if w.hold && obj.holdAt > 0 && w.off == int64(obj.holdAt) {
			obj.heldOnce.Do(func() { close(obj.held) })
			select {
			case <-obj.release:
			case <-w.ctx.Done():
				return written, w.ctx.Err()
			case <-w.stop:
				return written, io.ErrClosedPipe
			}
		}
		n := len(p)
		if obj.chunk > 0 {
			n = min(n, obj.chunk)
		}
		if h := int64(obj.holdAt); w.hold && obj.holdAt > 0 && h > w.off && h < w.off+int64(n) {
			n = int(h - w.off)
		}
		m, err := w.ResponseWriter.Write(p[:n])
		written += m
		w.off += int64(m)
		w.count(m)
		if err != nil {
			return written, err
		}
		if err := w.rc.Flush(); err != nil {
			return written, err
		}
		p = p[n:]
		if obj.delay > 0 {
			tm := time.NewTimer(obj.delay)
			select {
			case <-tm.C:
			case <-w.ctx.Done():
				tm.Stop()
				return written, w.ctx.Err()
			case <-w.stop:
				tm.Stop()
				return written, io.ErrClosedPipe
			}
		}
	}
	return written, nil
}

// ---------------------------------------------------------------------------
// helpers: a reader that checks every generation it sees

// genReader verifies a node's TUF metadata from the trusted root over and
// over and fetches every object it lists, recording any listed object that is not served with its digest.
// Connection errors are expected only while down is set (the node is being
// killed and restarted).
type genReader struct {
	url  string
	root []byte // the trusted root
	c    *http.Client
	down atomic.Bool
	stop chan struct{}
	done chan struct{}
	once sync.Once

	mu       sync.Mutex
	problems []string
	rounds   map[uint64]int // complete rounds per generation
	downErrs int
	seen     bool // a catalog was served once
}

func startGenReader(t testing.TB, url, rootFile string) *genReader {
	r := &genReader{url: url, root: readFile(t, rootFile), c: newClient(), stop: make(chan struct{}), done: make(chan struct{}), rounds: map[uint64]int{}}
	go r.run()
	t.Cleanup(r.halt)
	return r
}

func (r *genReader) halt() {
	r.once.Do(func() { close(r.stop) })
	<-r.done
}

func (r *genReader) count(gen uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rounds[gen]
}

func (r *genReader) problem(format string, args ...any) {
	r.mu.Lock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *genReader) transportErr(what string, err error) {
	if r.down.Load() {
		r.mu.Lock()
		r.downErrs++
		r.mu.Unlock()
		return
	}
	r.problem("%s: %v (the node was not being restarted)", what, err)
}

func (r *genReader) run() {
	defer close(r.done)
	for {
		select {
		case <-r.stop:
			return
		default:
		}
		r.round()
		tm := time.NewTimer(10 * time.Millisecond)
		select {
		case <-r.stop:
			tm.Stop()
			return
		case <-tm.C:
		}
	}
}

func (r *genReader) round() {
	// A TUF client that starts from the trusted root every round, as a
	// new agent would: it sees exactly the generation the node serves.
	tc, err := tufclient.New(r.root, tufclient.Options{})
	if err != nil {
		r.problem("tufclient: %v", err)
		return
	}
	st, err := tc.Update(context.Background(), httpMeta{c: r.c, base: r.url})
	r.mu.Lock()
	seen := r.seen
	r.mu.Unlock()
	if err != nil {
		var te transportError
		switch {
		case errors.As(err, &te):
			r.transportErr("metadata", err)
		case !seen:
			// no generation yet
		default:
			r.problem("metadata after a generation was served: %v", err)
		}
		return
	}
	r.mu.Lock()
	r.seen = true
	r.mu.Unlock()
	cat := st.Catalog
	for _, o := range cat.Objects {
		select {
		case <-r.stop:
			return
		default:
		}
		got, err := tryGet(r.c, http.MethodGet, r.url+"/"+o.Path)
		if err != nil {
			r.transportErr("GET /"+o.Path, err)
			return
		}
		if got.status != http.StatusOK {
			r.problem("generation %d lists %s but GET answers %d %s", cat.Generation, o.Path, got.status, truncate(got.body))
			continue
		}
		if sha(got.body) != o.Digest.Hex() {
			r.problem("generation %d lists %s as %s but GET sent %d bytes with sha256 %s", cat.Generation, o.Path, o.Digest, len(got.body), sha(got.body))
		}
	}
	r.mu.Lock()
	r.rounds[cat.Generation]++
	r.mu.Unlock()
}

// check reports what the reader saw; call after halt.
func (r *genReader) check(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	t.Logf("reader: complete rounds per generation %v, %d connection errors while the node was down", r.rounds, r.downErrs)
	for _, p := range r.problems {
		t.Errorf("reader: %s", p)
	}
	if r.rounds[1] == 0 || r.rounds[2] == 0 {
		t.Errorf("reader completed rounds %v, want some over generations 1 and 2", r.rounds)
	}
}
