package agent

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/relayd/relayd/pkg/contentcoding"
	"github.com/relayd/relayd/pkg/wire"
)

// text is n compressible bytes that differ with seed.
func text(n int, seed int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "rule %d/%d: deny tcp from any to 10.%d.0.0/16 port %d\n", seed, i, i%256, i%1024)
	}
	return b.Bytes()[:n]
}

func zstdOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := contentcoding.EncodeZstd(&out, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// An agent asks for zstd, decodes it to the signed bytes and commits them;
// what crossed the wire is a fraction of the object. An encoded answer
// that does not decode to the signed bytes (corrupt, other bytes, more
// bytes) is refused, counted, and the object fetched again as identity.
func TestAgentDecodesZstd(t *testing.T) {
	t.Parallel()
	const p = "security/rules/1/rules.txt"
	obj := text(1<<20, 1)
	good := zstdOf(t, obj)
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)/2] ^= 0xff
	cases := map[string]struct {
		body      []byte
		fallbacks int64
	}{
		"good":    {good, 0},
		"corrupt": {corrupt, 1},
		"other":   {zstdOf(t, text(1<<20, 2)), 1},
		"longer":  {zstdOf(t, text(1<<20+1, 1)), 1},
		"shorter": {zstdOf(t, obj[:len(obj)-1]), 1},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			k := newRepo(t)
			files := map[string][]byte{p: obj}
			r := newRelay(t, k.publish(t, 1, files), files)
			var mu sync.Mutex
			var accepts []string
			var wire_ int
			r.hook = func(w http.ResponseWriter, req *http.Request) bool {
				if req.URL.Path != "/"+p {
					return false
				}
				mu.Lock()
				defer mu.Unlock()
				ae := req.Header.Get("Accept-Encoding")
				accepts = append(accepts, ae)
				if !strings.Contains(ae, wire.CodingZstd) {
					wire_ += len(obj)
					return false
				}
				w.Header().Set("Content-Encoding", wire.CodingZstd)
				w.Header().Set("Content-Length", fmt.Sprint(len(c.body)))
				w.Write(c.body)
				wire_ += len(c.body)
				return true
			}
			dir := t.TempDir()
			a := newAgent(t, testConfig(k, dir, r))
			if _, err := a.Fetch(context.Background(), p); err != nil {
				t.Fatal(err)
			}
			wantFile(t, dir, p, obj)
			noParts(t, dir)
			st := a.Stats()
			if st.CodingFallbacks != c.fallbacks {
				t.Fatalf("coding fallbacks %d, want %d (stats %+v)", st.CodingFallbacks, c.fallbacks, st)
			}
			mu.Lock()
			defer mu.Unlock()
			if accepts[0] != wire.CodingZstd {
				t.Fatalf("first request Accept-Encoding %q, want zstd", accepts[0])
			}
			if c.fallbacks == 0 {
				if len(accepts) != 1 || wire_*10 > len(obj) {
					t.Fatalf("%d requests, %d wire bytes for a %d-byte object; want 1 request and under a tenth", len(accepts), wire_, len(obj))
				}
				return
			}
			if len(accepts) != 2 || accepts[1] != "" {
				t.Fatalf("requests' Accept-Encoding %q; want zstd, then identity", accepts)
			}
		})
	}
}
