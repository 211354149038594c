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
	"github.com/relayd/relayd/pkg/digest"
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

// An agent that holds the previous version of a path offers it as a dcz
// dictionary and rebuilds the new version from a delta a fraction of its
// size; a delta that does not rebuild the signed bytes is refused and the
// object fetched again as identity.
func TestAgentDecodesDcz(t *testing.T) {
	t.Parallel()
	const p = "software/agent/linux-amd64/agent.bin"
	v1 := data(1<<20, 7) // incompressible: only a delta helps
	v2 := bytes.Clone(v1)
	for i := 0; i < len(v2); i += 4096 {
		v2[i] ^= 0x5a
	}
	for _, corrupt := range []bool{false, true} {
		t.Run(fmt.Sprint("corrupt=", corrupt), func(t *testing.T) {
			t.Parallel()
			k := newRepo(t)
			files := map[string][]byte{p: v1}
			r := newRelay(t, k.publish(t, 1, files), files)
			dir := t.TempDir()
			cfg := testConfig(k, dir, r)
			if _, err := newAgent(t, cfg).Sync(context.Background()); err != nil {
				t.Fatal(err)
			}
			var delta bytes.Buffer
			if err := contentcoding.EncodeDelta(&delta, bytes.NewReader(v2), int64(len(v2)), v1); err != nil {
				t.Fatal(err)
			}
			body := delta.Bytes()
			if corrupt {
				body = bytes.Clone(body)
				body[len(body)-8] ^= 0xff
			}
			var mu sync.Mutex
			var dicts []string
			wire_ := 0
			r.mu.Lock()
			files2 := map[string][]byte{p: v2}
			r.cat, r.obj = k.publish(t, 2, files2), files2
			r.hook = func(w http.ResponseWriter, req *http.Request) bool {
				if req.URL.Path != "/"+p {
					return false
				}
				mu.Lock()
				defer mu.Unlock()
				dict := req.Header.Get(wire.AvailableDictionaryHeader)
				dicts = append(dicts, dict)
				if dict == "" || !strings.Contains(req.Header.Get("Accept-Encoding"), wire.CodingDcz) {
					wire_ += len(v2)
					return false
				}
				w.Header().Set("Content-Encoding", wire.CodingDcz)
				w.Write(body)
				wire_ += len(body)
				return true
			}
			r.mu.Unlock()
			a := newAgent(t, cfg)
			if _, err := a.Sync(context.Background()); err != nil {
				t.Fatal(err)
			}
			wantFile(t, dir, p, v2)
			noParts(t, dir)
			mu.Lock()
			defer mu.Unlock()
			want := contentcoding.FormatAvailableDictionary(digest.FromBytes(v1))
			if len(dicts) == 0 || dicts[0] != want {
				t.Fatalf("Available-Dictionary %q, want %q first", dicts, want)
			}
			st := a.Stats()
			if !corrupt {
				if len(dicts) != 1 || st.CodingFallbacks != 0 || wire_*10 > len(v2) {
					t.Fatalf("%d requests, %d wire bytes for %d; stats %+v; want 1 request, under a tenth", len(dicts), wire_, len(v2), st)
				}
				return
			}
			if len(dicts) != 2 || dicts[1] != "" || st.CodingFallbacks != 1 {
				t.Fatalf("dictionaries %q, stats %+v; want dcz refused once, then identity", dicts, st)
			}
		})
	}
}
