package origin_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/contentcoding"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/origin"
	"github.com/relayd/relayd/pkg/server"
	"github.com/relayd/relayd/pkg/wire"
)

func rules(n, seed int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "rule %d: deny tcp from any to 10.%d.%d.0/24 port %d\n", i, seed, i%256, i%1024)
	}
	return b.Bytes()[:n]
}

// get asks srv for p with the request fields hdr (name, value pairs) and
// returns the answer's coding, its bytes on the wire and its ETag.
func get(t *testing.T, srv *httptest.Server, p string, hdr ...string) (string, []byte, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/"+p, nil)
	for i := 0; i < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, %v", p, resp.StatusCode, err)
	}
	return resp.Header.Get("Content-Encoding"), b, resp.Header.Get("ETag")
}

func decode(t *testing.T, coding string, b, dict []byte, n int) []byte {
	t.Helper()
	r, err := contentcoding.Decode(bytes.NewReader(b), coding, dict, int64(n))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", coding, err)
	}
	return out
}

// The origin sends a file that a request accepts encoded as zstd, and the
// next version of it as a dcz delta against the previous one (which it
// copied when that was asked encoded); a dictionary it does not hold gets
// zstd, and a request without Accept-Encoding the file as it is, with the
// identity ETag the origin always sent.
func TestOriginEncodes(t *testing.T) {
	t.Parallel()
	tree, data := t.TempDir(), t.TempDir()
	const p = "security/rules.txt"
	file := filepath.Join(tree, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	v1 := rules(1<<20, 1)
	v2 := bytes.Clone(v1)
	copy(v2[1000:], "a changed line\n")
	if err := os.WriteFile(file, v1, 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := origin.New(tree, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	enc, err := origin.OpenEncoder(data, 1<<30, zerolog.Nop(), clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { enc.Close() })
	srv := httptest.NewServer(server.NewContent(server.ContentConfig{Source: o, Encoder: enc}, zerolog.Nop()))
	t.Cleanup(srv.Close)

	_, plain, etag1 := get(t, srv, p)
	if !bytes.Equal(plain, v1) || etag1 == digest.FromBytes(v1).ETag() {
		t.Fatalf("identity answer: %d bytes, ETag %s; want v1 with the origin's own ETag", len(plain), etag1)
	}
	coding, b, _ := get(t, srv, p, "Accept-Encoding", wire.CodingZstd)
	if coding != wire.CodingZstd || len(b)*10 > len(v1) || !bytes.Equal(decode(t, coding, b, nil, len(v1)), v1) {
		t.Fatalf("zstd request: coding %q, %d bytes for %d", coding, len(b), len(v1))
	}

	if err := os.WriteFile(file, v2, 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(file, later, later); err != nil {
		t.Fatal(err)
	}
	coding, b, _ = get(t, srv, p, "Accept-Encoding", "dcz, zstd",
		wire.AvailableDictionaryHeader, contentcoding.FormatAvailableDictionary(digest.FromBytes(v1)))
	if coding != wire.CodingDcz || len(b)*100 > len(v2) || !bytes.Equal(decode(t, coding, b, v1, len(v2)), v2) {
		t.Fatalf("dcz request: coding %q, %d bytes for %d", coding, len(b), len(v2))
	}
	coding, b, _ = get(t, srv, p, "Accept-Encoding", "dcz, zstd",
		wire.AvailableDictionaryHeader, contentcoding.FormatAvailableDictionary(digest.FromBytes([]byte("never seen"))))
	if coding != wire.CodingZstd || !bytes.Equal(decode(t, coding, b, nil, len(v2)), v2) {
		t.Fatalf("request naming an unknown dictionary: coding %q, want zstd", coding)
	}
	coding, plain, etag2 := get(t, srv, p)
	if coding != "" || !bytes.Equal(plain, v2) || etag2 == etag1 || etag2 == digest.FromBytes(v2).ETag() {
		t.Fatalf("identity answer: coding %q, ETag %s (v1's %s)", coding, etag2, etag1)
	}
}
