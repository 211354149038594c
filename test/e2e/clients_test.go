package e2e

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeTree writes files (slash paths) below root, with modification
// times a month ago so relayd's heuristic freshness keeps them fresh.
func writeTree(t testing.TB, root string, files map[string][]byte) {
	t.Helper()
	old := time.Now().Add(-30 * 24 * time.Hour)
	for name, b := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
}

// startOriginAndProxy starts `relayd serve --mode origin` over root and a
// proxy in front of it.
func startOriginAndProxy(t testing.TB, root string) (origin, relay *proc) {
	t.Helper()
	origin = startRelayd(t, "--mode", "origin", "--root", root)
	relay = startRelayd(t, "--mode", "proxy", "--upstream", origin.URL, "--data-dir", t.TempDir(), "--cache-max", "1GiB")
	return origin, relay
}

// TestRealClients drives relayd with curl: download, resume, HEAD.
func TestRealClients(t *testing.T) {
	t.Parallel()
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is not installed: install it (apt-get install curl; .ci/run does) — this test drives relayd with a real client")
	}
	tool, other, small := makeData(51, 3<<20+17), makeData(52, 5<<20), makeData(53, 200_000)
	root := t.TempDir()
	writeTree(t, root, map[string][]byte{"dl/tool.tar.gz": tool, "dl/other.bin": other, "dl/small.deb": small})
	_, relay := startOriginAndProxy(t, root)
	out := t.TempDir()

	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(curl, append([]string{"-sS", "-f", "--noproxy", "*", "--max-time", "30"}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("curl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout.String(), stderr.String())
		}
		return stdout.String()
	}

	// A plain download (cold: through the fill).
	f1 := filepath.Join(out, "tool.tar.gz")
	if got := run("-o", f1, "-w", "%{http_code}", relay.URL+"/dl/tool.tar.gz"); got != "200" {
		t.Errorf("curl download: status %s, want 200", got)
	}
	if got := fileSHA(t, f1); got != sha(tool) {
		t.Errorf("curl download: sha256 %s, want %s", got, sha(tool))
	}

	// HEAD of the now cached object, and of a cold one.
	head := func(path string, size int, cache string) {
		t.Helper()
		out := run("-I", relay.URL+path)
		lines := strings.Split(strings.ReplaceAll(out, "\r\n", "\n"), "\n")
		if !strings.HasPrefix(lines[0], "HTTP/1.1 200") {
			t.Errorf("curl -I %s: status line %q, want HTTP/1.1 200", path, lines[0])
		}
		hdr := map[string]string{}
		for _, l := range lines[1:] {
			if k, v, ok := strings.Cut(l, ":"); ok {
				hdr[strings.ToLower(k)] = strings.TrimSpace(v)
			}
		}
		for k, want := range map[string]string{
			"content-length": strconv.Itoa(size),
			"x-relay-cache":  cache,
			"accept-ranges":  "bytes",
		} {
			if hdr[k] != want {
				t.Errorf("curl -I %s: %s = %q, want %q (headers %v)", path, k, hdr[k], want, hdr)
			}
		}
	}
	head("/dl/tool.tar.gz", len(tool), "HIT")
	head("/dl/small.deb", len(small), "MISS")
	f0 := filepath.Join(out, "small.deb")
	run("-o", f0, relay.URL+"/dl/small.deb")
	if got := fileSHA(t, f0); got != sha(small) {
		t.Errorf("curl download after HEAD: sha256 %s, want %s", got, sha(small))
	}

	// Resume a partial file: the cold object (range on a fill) and the
	// cached one (range on a hit).
	for _, tc := range []struct {
		path string
		data []byte
		have int
	}{
		{"/dl/other.bin", other, 1<<20 + 123},
		{"/dl/tool.tar.gz", tool, 2<<20 + 5},
	} {
		f := filepath.Join(out, "resume-"+filepath.Base(tc.path))
		if err := os.WriteFile(f, tc.data[:tc.have], 0o644); err != nil {
			t.Fatal(err)
		}
		got := run("-C", "-", "-o", f, "-w", "%{http_code} %{size_download}", relay.URL+tc.path)
		if want := fmt.Sprintf("206 %d", len(tc.data)-tc.have); got != want {
			t.Errorf("curl -C - %s: status and bytes %q, want %q", tc.path, got, want)
		}
		if s := fileSHA(t, f); s != sha(tc.data) {
			t.Errorf("curl -C - %s: resumed file sha256 %s, want %s", tc.path, s, sha(tc.data))
		}
	}
}

// TestGoModDownload puts relayd between `go mod download` and a static
// module proxy tree served by a relayd origin.
func TestGoModDownload(t *testing.T) {
	t.Parallel()
	const mod, ver = "example.com/hello", "v1.0.0"
	gomod := []byte("module example.com/hello\n\ngo 1.21\n")
	hello := []byte("package hello\n\n// Hello greets.\nfunc Hello() string { return \"hello\" }\n")
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	for name, b := range map[string][]byte{"go.mod": gomod, "hello.go": hello} {
		w, err := zw.Create(mod + "@" + ver + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	writeTree(t, root, map[string][]byte{
		mod + "/@v/list":             []byte(ver + "\n"),
		mod + "/@v/" + ver + ".info": []byte(`{"Version":"` + ver + `","Time":"2024-01-02T03:04:05Z"}`),
		mod + "/@v/" + ver + ".mod":  gomod,
		mod + "/@v/" + ver + ".zip":  zb.Bytes(),
	})
	origin, relay := startOriginAndProxy(t, root)
	zipPath := "/" + mod + "/@v/" + ver + ".zip"
	modPath := "/" + mod + "/@v/" + ver + ".mod"

	download := func(run int) map[string]string {
		t.Helper()
		modcache := t.TempDir()
		cmd := exec.Command("go", "mod", "download", "-json", mod+"@"+ver)
		cmd.Dir = t.TempDir() // no go.mod here
		cmd.Env = append(os.Environ(),
			"GOPROXY="+relay.URL, "GOMODCACHE="+modcache, "GOFLAGS=-modcacherw",
			"GOSUMDB=off", "GONOSUMDB="+mod, "GOPRIVATE=", "GONOPROXY=", "GOTOOLCHAIN=local",
			"GO111MODULE=on", "GOENV=off")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("go mod download (run %d): %v\nstdout: %s\nstderr: %s", run, err, stdout.String(), stderr.String())
		}
		var res map[string]any
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
			t.Fatalf("go mod download (run %d): output %q: %v", run, stdout.String(), err)
		}
		if e, ok := res["Error"]; ok {
			t.Fatalf("go mod download (run %d): %v", run, e)
		}
		got := map[string]string{}
		for k, v := range res {
			got[k], _ = v.(string)
		}
		src, err := os.ReadFile(filepath.Join(got["Dir"], "hello.go"))
		if err != nil || !bytes.Equal(src, hello) {
			t.Fatalf("go mod download (run %d): extracted hello.go = %q, %v", run, src, err)
		}
		return got
	}

	first := download(1)
	// Each file crossed the origin once.
	eventually(t, 10*time.Second, "the origin's log to show the module zip and mod", func() error {
		log := origin.Log()
		if z, m := countRequests(log, "GET", zipPath), countRequests(log, "GET", modPath); z != 1 || m != 1 {
			return fmt.Errorf("origin served the .zip %d times and the .mod %d times", z, m)
		}
		return nil
	})

	second := download(2)
	if first["Sum"] == "" || first["Sum"] != second["Sum"] || first["GoModSum"] != second["GoModSum"] {
		t.Errorf("sums differ between runs: %v vs %v", first, second)
	}
	log := origin.Log()
	if z, m := countRequests(log, "GET", zipPath), countRequests(log, "GET", modPath); z != 1 || m != 1 {
		t.Errorf("after the second download the origin served the .zip %d times and the .mod %d times, want 1 each (from the relay's cache)", z, m)
	}
	r := get(t, newClient(), http.MethodGet, relay.URL+zipPath)
	wantObject(t, r, zb.Bytes(), "module zip through the relay")
	if r.cache() != "HIT" {
		t.Errorf("module zip through the relay: X-Relay-Cache %q, want HIT", r.cache())
	}
}
