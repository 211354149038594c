package e2e

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBadInputE2E sends hostile paths, bad ranges and oversized headers
// to a running relay.
func TestBadInputE2E(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	dataDir := filepath.Join(base, "data")
	sentinel := filepath.Join(base, "etc", "passwd")
	if err := os.MkdirAll(filepath.Dir(sentinel), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sentinel, []byte("root:x:0:0:sentinel\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(sentinel)
	if err != nil {
		t.Fatal(err)
	}

	obj := makeData(71, 100_000)
	origin := startOrigin(t)
	origin.set("/pkg/obj.bin", newObject(obj, "max-age=3600"))
	origin.set("/pkg/cold.bin", newObject(obj, "max-age=3600"))
	relay := startRelaydIn(t, base, "--mode", "proxy", "--upstream", origin.URL, "--data-dir", dataDir)
	c := newClient()

	// A relayd origin whose root is next to the sentinel: base/root.
	root := filepath.Join(base, "root")
	writeTree(t, root, map[string][]byte{"a/file.txt": []byte("inside the root\n")})
	originRelayd := startRelaydIn(t, base, "--mode", "origin", "--root", root)

	for _, p := range []string{
		"/../etc/passwd",
		"/a/%2e%2e/%2e%2e/etc/passwd",
		"/a/../../etc/passwd",
		"/a%00b",
		"/a%5Cb",
		"/a\\b",
		"//etc/passwd",
		"/%2F%2Fetc/passwd",
		"/a/%2E%2E%2F%2E%2E%2Fetc/passwd",
		"/./a",
	} {
		for _, target := range []*proc{relay, originRelayd} {
			r := rawRequest(t, target.Addr, "GET "+p+" HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n")
			wantJSONError(t, r, http.StatusBadRequest, "bad_path", "GET "+p+" ("+target.Name+")")
			if strings.Contains(string(r.body), "sentinel") {
				t.Errorf("GET %s (%s) returned the sentinel file", p, target.Name)
			}
		}
	}
	for _, p := range origin.seenPaths() {
		t.Errorf("a hostile path reached the origin as %q", p)
	}

	// Unsatisfiable ranges, on a cached object and on a cold one (fill).
	wantObject(t, get(t, c, http.MethodGet, relay.URL+"/pkg/obj.bin"), obj, "GET obj")
	size := strconv.Itoa(len(obj))
	for _, p := range []string{"/pkg/obj.bin", "/pkg/cold.bin"} {
		for _, rng := range []string{"bytes=" + size + "-", "bytes=" + size + "-" + strconv.Itoa(len(obj)+10)} {
			r := get(t, c, http.MethodGet, relay.URL+p, "Range", rng)
			wantJSONError(t, r, http.StatusRequestedRangeNotSatisfiable, "bad_range", "GET "+p+" Range "+rng)
			if got, want := r.header.Get("Content-Range"), "bytes */"+size; got != want {
				t.Errorf("GET %s Range %s: Content-Range %q, want %q", p, rng, got, want)
			}
		}
	}

	// 40 KiB of request headers.
	req, _ := http.NewRequest(http.MethodGet, relay.URL+"/pkg/obj.bin", nil)
	for i := range 40 {
		req.Header.Set("X-Pad-"+strconv.Itoa(i), strings.Repeat("p", 1024))
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET with 40 KiB of headers: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantJSONError(t, response{status: resp.StatusCode, header: resp.Header, body: body},
		http.StatusRequestHeaderFieldsTooLarge, "headers_too_large", "GET with 40 KiB of headers")

	// The relay still works, and wrote nothing outside its data dir.
	wantObject(t, get(t, c, http.MethodGet, relay.URL+"/pkg/obj.bin"), obj, "GET obj at the end")
	relay.Stop(t, 5*time.Second)
	after, err := os.Stat(sentinel)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(sentinel); string(b) != "root:x:0:0:sentinel\n" || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("sentinel %s changed: %q, mtime %v → %v", sentinel, b, before.ModTime(), after.ModTime())
	}
	originRelayd.Stop(t, 5*time.Second)
	if got := dirNames(t, base); !slices.Equal(got, []string{"data", "etc", "root"}) {
		t.Errorf("the relays' working dir %s holds %v, want [data etc root]", base, got)
	}
	if got := dirNames(t, filepath.Join(base, "etc")); !slices.Equal(got, []string{"passwd"}) {
		t.Errorf("%s holds %v, want [passwd]", filepath.Join(base, "etc"), got)
	}
	// encoded: the cache of compressed forms (pkg/contentcoding).
	if got := dirNames(t, dataDir); !slices.Equal(got, []string{"blobs", "encoded", "index.db", "tmp"}) {
		t.Errorf("data dir holds %v, want [blobs encoded index.db tmp]", got)
	}
	checkBlobs(t, dataDir)
}
