package hierarchy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/relayd/relayd/pkg/contentcoding"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/wire"
)

// codedParent answers like a relay that encodes: zstd, or dcz against the
// dictionary it holds when the request names it. hostile, when set,
// replaces the encoded body it sends.
type codedParent struct {
	obj, dict []byte
	mu        sync.Mutex
	asked     []string // Accept-Encoding of each request
	hostile   func(enc []byte) []byte
}

func (p *codedParent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.asked = append(p.asked, r.Header.Get("Accept-Encoding"))
	hostile := p.hostile
	p.mu.Unlock()
	a := contentcoding.ParseAccept(r.Header.Get("Accept-Encoding"), r.Header.Get(wire.AvailableDictionaryHeader))
	var enc bytes.Buffer
	switch {
	case a.Dcz && a.Dict == digest.FromBytes(p.dict):
		_ = contentcoding.EncodeDelta(&enc, bytes.NewReader(p.obj), int64(len(p.obj)), p.dict)
		w.Header().Set("Content-Encoding", wire.CodingDcz)
	case a.Zstd:
		_ = contentcoding.EncodeZstd(&enc, bytes.NewReader(p.obj), int64(len(p.obj)))
		w.Header().Set("Content-Encoding", wire.CodingZstd)
	default:
		w.Header().Set("Etag", digest.FromBytes(p.obj).ETag())
		w.Header().Set("Content-Length", strconv.Itoa(len(p.obj)))
		_, _ = w.Write(p.obj)
		return
	}
	body := enc.Bytes()
	if hostile != nil {
		body = hostile(body)
	}
	_, _ = w.Write(body)
}

// versions are two versions of a real text: this package's client.go at
// an earlier commit and now.
func versions(t *testing.T) (old, new []byte) {
	new, err := os.ReadFile("client.go")
	if err != nil {
		t.Fatal(err)
	}
	old, err = exec.Command("git", "show", "1a3492b:./client.go").Output()
	if err != nil {
		t.Skipf("git show: %v", err)
	}
	return old, new
}

func TestFetchCoded(t *testing.T) {
	t.Parallel()
	old, new := versions(t)
	flip := func(enc []byte) []byte { b := bytes.Clone(enc); b[len(b)/2] ^= 0xff; return b }
	otherBytes := func([]byte) []byte { // a valid delta of other bytes of the same length
		var enc bytes.Buffer
		evil := bytes.ToUpper(new)
		_ = contentcoding.EncodeDelta(&enc, bytes.NewReader(evil), int64(len(evil)), old)
		return enc.Bytes()
	}
	for _, tc := range []struct {
		name    string
		dict    bool
		hostile func([]byte) []byte
		wantAsk string
		refused bool
	}{
		{"zstd", false, nil, "zstd", false},
		{"dcz", true, nil, "dcz, zstd", false},
		{"corrupt delta", true, flip, "dcz, zstd", true},
		{"delta of other bytes", true, otherBytes, "dcz, zstd", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := &codedParent{obj: new, dict: old, hostile: tc.hostile}
			srv := httptest.NewServer(p)
			defer srv.Close()
			cfg := DefaultConfig()
			cfg.Upstreams = []string{srv.URL}
			c := newClient(t, cfg)
			cd := contentcoding.Target{Length: int64(len(new)), Digest: digest.FromBytes(new)}
			if tc.dict {
				cd.Dict, cd.LoadDict = digest.FromBytes(old), func() ([]byte, error) { return old, nil }
			}
			ctx := contentcoding.WithTarget(context.Background(), cd)
			resp, err := c.Fetch(ctx, "software/x", nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if tc.refused {
				if !errors.Is(err, ErrCoding) || bytes.Equal(got, new) || c.DeltaFallbacks() != 1 {
					t.Fatalf("hostile answer: err %v, whole object %v, fallbacks %d; want ErrCoding, less than the object, 1",
						err, bytes.Equal(got, new), c.DeltaFallbacks())
				}
				// The next fetch of the key is a full transfer.
				resp, err = c.Fetch(ctx, "software/x", nil)
				if err != nil {
					t.Fatal(err)
				}
				got, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if err != nil || !bytes.Equal(got, new) {
				t.Fatalf("body: err %v, equal %v", err, bytes.Equal(got, new))
			}
			if resp.Header.Get("Content-Encoding") != "" || resp.ContentLength != int64(len(new)) || resp.Header.Get("Etag") != cd.Digest.ETag() {
				t.Errorf("headers of the decoded answer: %v, length %d", resp.Header, resp.ContentLength)
			}
			if tr := c.Traffic(); !tc.refused && (tr.ContentBytes != int64(len(new)) || tr.WireBytes >= tr.ContentBytes) {
				t.Errorf("traffic: %d bytes on the wire, %d of content; want fewer on the wire, %d of content", tr.WireBytes, tr.ContentBytes, len(new))
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.asked[0] != tc.wantAsk {
				t.Errorf("asked Accept-Encoding %q, want %q", p.asked[0], tc.wantAsk)
			}
			if tc.refused && (len(p.asked) != 2 || p.asked[1] != "") {
				t.Errorf("after a refused answer the request asked %q, want identity", p.asked)
			}
		})
	}
	// Without a Target nothing changes.
	p := &codedParent{obj: new, dict: old}
	srv := httptest.NewServer(p)
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.Upstreams = []string{srv.URL}
	resp, err := newClient(t, cfg).Fetch(context.Background(), "x", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if p.asked[0] != "" && !strings.Contains(p.asked[0], "gzip") {
		t.Errorf("a plain fetch asked %q", p.asked[0])
	}
}
