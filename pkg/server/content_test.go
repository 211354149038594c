package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/origin"
	"github.com/relayd/relayd/pkg/wire"
)

// newOriginServer serves a temp directory through the content handler on
// a real 127.0.0.1 listener.
func newOriginServer(t *testing.T) (*httptest.Server, []byte, time.Time) {
	t.Helper()
	dir := t.TempDir()
	body := []byte(strings.Repeat("0123456789", 1000)) // 10,000 bytes
	if err := os.MkdirAll(filepath.Join(dir, "pkgs"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "pkgs", "a!b.bin")
	if err := os.WriteFile(p, body, 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	// A secret next to the root must stay unreachable.
	if err := os.WriteFile(filepath.Join(filepath.Dir(dir), "secret"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := origin.New(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	srv := httptest.NewServer(NewContent(ContentConfig{Source: o, Relays: func() wire.Relays { return wire.Relays{Relays: []wire.Relay{}} }}, zerolog.New(zerolog.NewTestWriter(t))))
	t.Cleanup(srv.Close)
	return srv, body, mtime
}

func TestObjectSemantics(t *testing.T) {
	t.Parallel()
	srv, body, mtime := newOriginServer(t)
	etag := func() string {
		resp, err := http.Head(srv.URL + "/pkgs/a!b.bin")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("Etag")
	}()
	if etag == "" {
		t.Fatal("no ETag")
	}
	lm := mtime.Format(http.TimeFormat)
	for _, tc := range []struct {
		name       string
		method     string
		path       string
		header     map[string]string
		wantStatus int
		wantBody   string // "" = no check; "-" = empty
		wantHeader map[string]string
	}{
		{name: "get whole", method: "GET", path: "/pkgs/a!b.bin", wantStatus: 200, wantBody: string(body), wantHeader: map[string]string{"Content-Length": "10000", "Accept-Ranges": "bytes", "Last-Modified": lm}},
		{name: "encoded path is the same object", method: "GET", path: "/pkgs/a%21b.bin", wantStatus: 200, wantBody: string(body)},
		{name: "head", method: "HEAD", path: "/pkgs/a!b.bin", wantStatus: 200, wantBody: "-", wantHeader: map[string]string{"Content-Length": "10000"}},
		{name: "range", method: "GET", path: "/pkgs/a!b.bin", header: map[string]string{"Range": "bytes=10-19"}, wantStatus: 206, wantBody: "0123456789", wantHeader: map[string]string{"Content-Range": "bytes 10-19/10000", "Content-Length": "10"}},
		{name: "suffix range", method: "GET", path: "/pkgs/a!b.bin", header: map[string]string{"Range": "bytes=-3"}, wantStatus: 206, wantBody: "789"},
		{name: "open range", method: "GET", path: "/pkgs/a!b.bin", header: map[string]string{"Range": "bytes=9995-"}, wantStatus: 206, wantBody: "56789"},
		{name: "unsatisfiable range", method: "GET", path: "/pkgs/a!b.bin", header: map[string]string{"Range": "bytes=10000-"}, wantStatus: 416, wantHeader: map[string]string{"Content-Range": "bytes */10000"}},
		{name: "malformed range ignored", method: "GET", path: "/pkgs/a!b.bin", header: map[string]string{"Range": "bytes=x-y"}, wantStatus: 200, wantBody: string(body)},
		{name: "multiple ranges: whole object", method: "GET", path: "/pkgs/a!b.bin", header: map[string]string{"Range": "bytes=0-1,5-6"}, wantStatus: 200, wantBody: string(body)},
		{name: "if-range match", method: "GET", path: "/pkgs/a!b.bin", header: map[string]string{"Range": "bytes=0-0", "If-Range": etag}, wantStatus: 206, wantBody: "0"},
		{name: "if-range mismatch: whole object", method: "GET", path: "/pkgs/a!b.bin", header: map[string]string{"Range": "bytes=0-0", "If-Range": `"other"`}, wantStatus: 200, wantBody: string(body)},
		{name: "if-none-match", method: "GET", path: "/pkgs/a!b.bin", header: map[string]string{"If-None-Match": `"x", ` + etag}, wantStatus: 304, wantBody: "-", wantHeader: map[string]string{"Etag": etag}},
		{name: "if-none-match star", method: "GET", path: "/pkgs/a!b.bin", header: map[string]string{"If-None-Match": "*"}, wantStatus: 304},
		{name: "if-none-match other", method: "GET", path: "/pkgs/a!b.bin", header: map[string]string{"If-None-Match": `"x"`}, wantStatus: 200},
		{name: "if-modified-since not modified", method: "GET", path: "/pkgs/a!b.bin", header: map[string]string{"If-Modified-Since": lm}, wantStatus: 304},
		{name: "if-modified-since modified", method: "GET", path: "/pkgs/a!b.bin", header: map[string]string{"If-Modified-Since": mtime.Add(-time.Hour).Format(http.TimeFormat)}, wantStatus: 200},
		{name: "inm beats ims", method: "GET", path: "/pkgs/a!b.bin", header: map[string]string{"If-None-Match": `"x"`, "If-Modified-Since": lm}, wantStatus: 200},
		{name: "not found", method: "GET", path: "/pkgs/none", wantStatus: 404},
		{name: "directory is not an object", method: "GET", path: "/pkgs", wantStatus: 404},
		{name: "post refused", method: "POST", path: "/pkgs/a!b.bin", wantStatus: 405, wantHeader: map[string]string{"Allow": "GET, HEAD"}},
		{name: "healthz", method: "GET", path: "/-/healthz", wantStatus: 200},
		{name: "unknown api", method: "GET", path: "/-/nothing", wantStatus: 404},
		{name: "encoded reserved prefix", method: "GET", path: "/-%2Fhealthz", wantStatus: 400},
		{name: "dot-dot encoded", method: "GET", path: "/pkgs/%2e%2e/%2e%2e/secret", wantStatus: 400},
		{name: "dot-dot mixed case", method: "GET", path: "/pkgs/%2E./secret", wantStatus: 400},
		{name: "nul", method: "GET", path: "/pkgs/a%00b", wantStatus: 400},
		{name: "backslash", method: "GET", path: "/pkgs/..%5c..%5csecret", wantStatus: 400},
		{name: "absolute", method: "GET", path: "//etc/passwd", wantStatus: 400},
		{name: "drive letter", method: "GET", path: "/C:/Windows/win.ini", wantStatus: 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, tc.wantStatus, got)
			}
			switch tc.wantBody {
			case "":
			case "-":
				if len(got) != 0 {
					t.Fatalf("body %d bytes, want none", len(got))
				}
			default:
				if string(got) != tc.wantBody {
					t.Fatalf("body %q…, want %q…", trunc(got), trunc([]byte(tc.wantBody)))
				}
			}
			for k, v := range tc.wantHeader {
				if g := resp.Header.Get(k); g != v {
					t.Fatalf("%s: %q, want %q", k, g, v)
				}
			}
			if resp.StatusCode >= 400 && tc.method != "HEAD" {
				var e struct{ Error, Code string }
				if err := json.Unmarshal(got, &e); err != nil || e.Error == "" || e.Code == "" {
					t.Fatalf("error body %q is not {error, code} JSON", got)
				}
				if resp.Header.Get("Content-Type") != "application/json" {
					t.Fatalf("error content type %q", resp.Header.Get("Content-Type"))
				}
			}
		})
	}
}

func trunc(b []byte) string {
	if len(b) > 20 {
		return string(b[:20])
	}
	return string(b)
}

// rawGet sends a request line as given (Go's client would clean it).
func rawGet(t *testing.T, addr, target string, extra string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n", target, extra)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRawBadRequests(t *testing.T) {
	t.Parallel()
	srv, _, _ := newOriginServer(t)
	addr := srv.Listener.Addr().String()
	for _, target := range []string{"/../secret", "/pkgs/../../secret", "/pkgs/./a!b.bin", "/pkgs\\..\\secret"} {
		if code, body := rawGet(t, addr, target, ""); code != 400 || !strings.Contains(body, `"bad_path"`) {
			t.Errorf("%s: %d %s, want 400 bad_path", target, code, body)
		}
	}
	big := "X-Big: " + strings.Repeat("a", 40<<10) + "\r\n"
	if code, body := rawGet(t, addr, "/pkgs/a!b.bin", big); code != 431 || !strings.Contains(body, `"headers_too_large"`) {
		t.Errorf("40 KiB of headers: %d %s, want 431 JSON", code, body)
	}
	if code, _ := rawGet(t, addr, "/pkgs/a!b.bin", "X-Ok: "+strings.Repeat("a", 20<<10)+"\r\n"); code != 200 {
		t.Errorf("20 KiB of headers: %d, want 200", code)
	}
}

// Over HTTP/2 (the TLS port offers h2) a large file goes out through
// io.Copy: h2's writer has no ReadFrom for sendfile.
func TestLargeObjectOverHTTP2(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	body := []byte(strings.Repeat("0123456789abcdef", 64<<10)) // 1 MiB
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), body, 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := origin.New(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	srv := httptest.NewUnstartedServer(NewContent(ContentConfig{Source: o, Relays: func() wire.Relays { return wire.Relays{} }}, zerolog.New(zerolog.NewTestWriter(t))))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	resp, err := srv.Client().Get(srv.URL + "/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil || resp.ProtoMajor != 2 || !bytes.Equal(got, body) {
		t.Fatalf("HTTP/%d: %d of %d bytes, %v", resp.ProtoMajor, len(got), len(body), err)
	}
}
