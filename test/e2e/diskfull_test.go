package e2e

import (
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDiskFull507 runs relayd on an 8 MiB tmpfs (in a private mount
// namespace) with a quota larger than the disk: an object that does not
// fit gets 507 disk_full and what is stored keeps being served.
func TestDiskFull507(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatal("unshare (util-linux) is not installed; this test needs it to mount an 8 MiB tmpfs: apt-get install util-linux")
	}
	if out, err := exec.Command("unshare", "-Urm", "sh", "-c", `mount -t tmpfs -o size=8m none "$1"`, "sh", t.TempDir()).CombinedOutput(); err != nil {
		t.Fatalf("unshare -Urm + mount tmpfs does not work here (need user and mount namespaces): %v: %s", err, out)
	}

	small, mid, big := makeData(41, 64<<10), makeData(42, 1<<20), makeData(43, 16<<20)
	origin := startOrigin(t)
	origin.set("/small.bin", newObject(small, "max-age=3600"))
	origin.set("/mid.bin", newObject(mid, "max-age=3600"))
	origin.set("/big.bin", newObject(big, "max-age=3600"))

	dataDir := t.TempDir()
	argv := []string{"unshare", "-Urm", "sh", "-c", `mount -t tmpfs -o size=8m none "$DATA" && exec "$RELAYD" "$@"`, "sh",
		"serve", "--listen", "127.0.0.1:0", "--admin=", "--gossip=", "--log-format", "json",
		"--mode", "proxy", "--upstream", origin.URL, "--data-dir", dataDir, "--cache-max", "1GiB"}
	relay := startProc(t, "relayd-tmpfs", argv, []string{"DATA=" + dataDir, "RELAYD=" + relaydBin}, "")
	relay.WaitReady(t)
	c := newClient()

	r := get(t, c, http.MethodGet, relay.URL+"/small.bin")
	wantObject(t, r, small, "small object, first GET")
	r = get(t, c, http.MethodGet, relay.URL+"/small.bin")
	wantObject(t, r, small, "small object, second GET")
	if r.cache() != "HIT" {
		t.Errorf("small object second GET: X-Relay-Cache %q, want HIT", r.cache())
	}

	r = get(t, c, http.MethodGet, relay.URL+"/big.bin")
	wantJSONError(t, r, http.StatusInsufficientStorage, "disk_full", "16 MiB object on an 8 MiB disk")

	r = get(t, c, http.MethodGet, relay.URL+"/small.bin")
	wantObject(t, r, small, "small object after the 507")
	if r.cache() != "HIT" {
		t.Errorf("small object after the 507: X-Relay-Cache %q, want HIT", r.cache())
	}

	r = get(t, c, http.MethodGet, relay.URL+"/mid.bin")
	wantObject(t, r, mid, "1 MiB object after the 507")
	r = get(t, c, http.MethodGet, relay.URL+"/mid.bin")
	wantObject(t, r, mid, "1 MiB object, second GET")
	if r.cache() != "HIT" {
		t.Errorf("1 MiB object second GET: X-Relay-Cache %q, want HIT", r.cache())
	}

	// The disk fills in the middle of a body of unknown length: the client
	// must not get a complete 200 of the wrong length, and the space must
	// come back for the next object.
	chunked := newObject(makeData(44, 16<<20), "max-age=3600")
	chunked.noLength, chunked.chunk = true, 256<<10
	origin.set("/big-chunked.bin", chunked)
	r, err := tryGet(c, http.MethodGet, relay.URL+"/big-chunked.bin")
	switch {
	case err != nil:
		t.Logf("16 MiB chunked object on a full disk: aborted as expected (%v)", err)
	case r.status == http.StatusInsufficientStorage:
		wantJSONError(t, r, http.StatusInsufficientStorage, "disk_full", "16 MiB chunked object")
	default:
		t.Errorf("16 MiB chunked object on an 8 MiB disk: complete response with status %d and %d bytes; want 507 or an aborted body", r.status, len(r.body))
	}
	mid2 := makeData(45, 1<<20)
	origin.set("/mid2.bin", newObject(mid2, "max-age=3600"))
	eventually(t, 10*time.Second, "a 1 MiB object to fit after the aborted fill", func() error {
		r, err := tryGet(c, http.MethodGet, relay.URL+"/mid2.bin")
		if err != nil {
			return err
		}
		if r.status != http.StatusOK {
			return fmt.Errorf("status %d: %s", r.status, truncate(r.body))
		}
		if sha(r.body) != sha(mid2) {
			return stopErr{Err: fmt.Errorf("wrong bytes: %d bytes sha256 %s", len(r.body), sha(r.body))}
		}
		return nil
	})
	r = get(t, c, http.MethodGet, relay.URL+"/small.bin")
	wantObject(t, r, small, "small object at the end")
	if r.cache() != "HIT" {
		t.Errorf("small object at the end: X-Relay-Cache %q, want HIT", r.cache())
	}
}

// TestMirrorDiskFullMidSync: a mirror on an 8 MiB tmpfs syncs a small
// generation, then a generation with a 16 MiB object: that sync stops with
// a clear error, and the first generation stays live and served.
func TestMirrorDiskFullMidSync(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatal("unshare (util-linux) is not installed; this test needs it to mount a tmpfs: apt-get install util-linux")
	}
	files := map[string][]byte{
		"security/a.patch":           makeData(51, 200<<10),
		"software/linux/1.0/tool.gz": makeData(52, 1<<20),
	}
	tree, keys, root := publishedTree(t, files)
	gen1 := readFile(t, timestampFile(tree))
	origin := startRelayd(t, "--mode", "origin", "--root", tree)

	dataDir, admin := t.TempDir(), freeAddr(t)
	argv := []string{"unshare", "-Urm", "sh", "-c", `mount -t tmpfs -o size=8m none "$DATA" && exec "$RELAYD" "$@"`, "sh",
		"serve", "--listen", "127.0.0.1:0", "--admin", admin, "--gossip=", "--log-format", "json",
		"--mode", "mirror", "--node", "m1", "--upstream", origin.URL, "--root", root, "--data-dir", dataDir}
	mirror := startProc(t, "relayd-mirror-tmpfs", argv, []string{"DATA=" + dataDir, "RELAYD=" + relaydBin}, "")
	mirror.WaitReady(t)
	waitCatalog(t, mirror, gen1, 30*time.Second)

	writeFiles(t, tree, map[string][]byte{"software/linux/2.0/big.iso": makeData(53, 16<<20)})
	publish(t, tree, keys)
	st := syncNow(t, admin)
	if st.State != "failed" || st.Generation != 1 || !strings.Contains(st.LastError, "no space left") {
		t.Fatalf("sync onto a full disk: %+v; want failed, generation 1 live, and an error saying the disk is full", st)
	}
	c := newClient()
	wantBody(t, get(t, c, http.MethodGet, mirror.URL+"/-/tuf/timestamp.json"), gen1, "timestamp.json after the failed sync")
	for p, want := range files {
		wantObject(t, get(t, c, http.MethodGet, mirror.URL+"/"+p), want, p+" after the failed sync")
	}
	wantJSONError(t, get(t, c, http.MethodGet, mirror.URL+"/software/linux/2.0/big.iso"), http.StatusNotFound, "not_found", "object of the generation that did not fit")
}
