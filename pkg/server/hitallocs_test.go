package server

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/contentcoding"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/wire"
)

// hitSource answers every key with one stored 4 KiB file, as the proxy
// cache answers a hit: a shared read-only header, the file read with
// pread.
type hitSource struct {
	f      *os.File
	header http.Header
	etag   string
}

func (s *hitSource) Get(context.Context, string) (*object.Object, error) {
	return &object.Object{Key: "o", Size: 4 << 10, ETag: s.etag, Header: s.header, Cache: object.Hit,
		Age: "0", Body: &object.FileBody{R: s.f, N: 4 << 10}}, nil
}

// identityEncoder sends everything as it is (a relay whose clients ask
// for no coding).
type identityEncoder struct{}

func (identityEncoder) Get(digest.Digest, contentcoding.Accept) (*contentcoding.Form, error) {
	return nil, nil
}

// discardWriter is a ResponseWriter that keeps nothing but its header
// map, reused between requests as net/http's would not be.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

func newHitHandler(tb testing.TB, etag string) (*Content, *http.Request) {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "o")
	if err := os.WriteFile(p, bytes.Repeat([]byte{'x'}, 4<<10), 0o644); err != nil {
		tb.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	src := &hitSource{f: f, etag: etag, header: http.Header{"Cache-Control": {"max-age=604800"}, "Content-Type": {"application/octet-stream"},
		"Expires": {"Mon, 14 Dec 2026 23:34:48 GMT"}, "Last-Modified": {"Mon, 07 Dec 2026 23:34:34 GMT"}, "Server": {"nginx/1.22.1"}}}
	c := NewContent(ContentConfig{Source: src, Encoder: identityEncoder{}, Relays: func() wire.Relays { return wire.Relays{} }},
		zerolog.Nop())
	req, err := http.NewRequest(http.MethodGet, "http://relay/pool/main/o.deb", nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("User-Agent", "Debian APT-HTTP/1.3 (2.6.1)")
	return c, req
}

// serveHit serves one hit to w, whose header it clears first.
func serveHit(c *Content, w *discardWriter, req *http.Request) {
	clear(w.h)
	c.ServeHTTP(w, req)
}

// relayETag is a relay upstream's ETag (the digest: an object that may be
// sent encoded); plainETag a plain origin's (nginx).
var relayETag, plainETag = digest.Digest{1}.ETag(), `"6b17428a-1000"`

// BenchmarkContentHit is the content port's share of a 4 KiB hit: routing,
// the access log, the loop guard, the response header, the body's pread
// (net/http's own work and the cache lookup not included).
func BenchmarkContentHit(b *testing.B) {
	c, req := newHitHandler(b, relayETag)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		serveHit(c, w, req)
	}
}

// maxHitAllocs pins the content port's allocations per hit: 22 (2,372
// bytes) at the start of issue 17; the router, a copy of the stored header
// for Vary and the field values of every hit were most of them.
const maxHitAllocs = 11

func TestContentHitAllocations(t *testing.T) {
	for _, etag := range []string{relayETag, plainETag} {
		c, req := newHitHandler(t, etag)
		w := &discardWriter{h: http.Header{}}
		serveHit(c, w, req)
		if w.h.Get("Content-Length") != "4096" || w.h.Get(wire.CacheHeader) != object.Hit ||
			(etag == relayETag) != (w.h.Get("Vary") == wire.CodedVary) {
			t.Fatalf("ETag %s: response header %v", etag, w.h)
		}
		if n := testing.AllocsPerRun(200, func() { serveHit(c, w, req) }); n > maxHitAllocs {
			t.Errorf("ETag %s: %.0f allocations per hit, want at most %d", etag, n, maxHitAllocs)
		}
	}
}
