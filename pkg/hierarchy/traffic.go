// Honest WAN accounting: bytes on the wire and bytes of content, per
// kind, apart — an encoded transfer (zstd, a dcz delta) puts fewer bytes
// on the wire than the object holds, and reports say which is which.
package hierarchy

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/relayd/relayd/pkg/admindoc"
	"github.com/relayd/relayd/pkg/catalog"
)

// kinds are the catalog kinds traffic is counted by (catalog.Classify).
var kinds = [...]string{catalog.KindSecurity, catalog.KindSoftware, catalog.KindOther}

func kindIndex(key string) int {
	path, _, _ := strings.Cut(key, "?")
	k, _, _ := catalog.Classify(path)
	for i, name := range kinds {
		if name == k {
			return i
		}
	}
	return len(kinds) - 1
}

// traffic counts body bytes fetched from upstreams and fallbacks (never
// peers: that is the LAN).
type traffic struct {
	wire, content [len(kinds)]atomic.Int64
}

// identity reports whether resp's body is the content itself (no
// Content-Encoding, or identity).
func identity(resp *http.Response) bool {
	ce := strings.TrimSpace(resp.Header.Get("Content-Encoding"))
	return ce == "" || strings.EqualFold(ce, "identity")
}

// wireBody counts resp's body as wire bytes of key's kind as it is read;
// an unencoded 200 or 206 body counts as content too. The body of an
// encoded response counts as content where it is decoded (CountContent).
func (t *traffic) wireBody(key string, resp *http.Response) io.ReadCloser {
	k := kindIndex(key)
	ok := resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusPartialContent
	b := &meteredBody{r: resp.Body, wire: &t.wire[k]}
	if ok && identity(resp) {
		b.content = &t.content[k]
	}
	return b
}

type meteredBody struct {
	r             io.ReadCloser
	wire, content *atomic.Int64 // nil: not counted here
}

func (b *meteredBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		if b.wire != nil {
			b.wire.Add(int64(n))
		}
		if b.content != nil {
			b.content.Add(int64(n))
		}
	}
	return n, err
}

func (b *meteredBody) Close() error { return b.r.Close() }

// CountContent counts n bytes of decoded content of key's kind: the hook
// for whoever decodes an encoded upstream body (zstd, dcz). Bytes on the
// wire are counted already, as Fetch returns the body.
func (c *Client) CountContent(key string, n int64) {
	c.traffic.content[kindIndex(key)].Add(n)
}

// ContentBody wraps the decoded body of an encoded upstream response of
// key: each byte read from it counts as content (CountContent). Wrap the
// decoder's output, never the network body (wireBody counts that).
func (c *Client) ContentBody(key string, decoded io.ReadCloser) io.ReadCloser {
	return &meteredBody{r: decoded, content: &c.traffic.content[kindIndex(key)]}
}

// Traffic is the WAN bytes by kind (UpstreamTraffic documents them).
type Traffic = admindoc.UpstreamTraffic

// Traffic returns the upstream bytes on the wire and of content, per kind
// (security, software, other), and their totals.
func (c *Client) Traffic() Traffic {
	var tr Traffic
	for i, k := range kinds {
		kt := admindoc.KindTraffic{Kind: k, WireBytes: c.traffic.wire[i].Load(), ContentBytes: c.traffic.content[i].Load()}
		tr.Kinds = append(tr.Kinds, kt)
		tr.WireBytes += kt.WireBytes
		tr.ContentBytes += kt.ContentBytes
	}
	if tr.ContentBytes > 0 {
		tr.WireRatio = float64(tr.WireBytes) / float64(tr.ContentBytes)
	}
	return tr
}

// WindowStatus is the transfer window in force and what waits for it
// (nil without a schedule, foreground cap or rate cap).
func (c *Client) WindowStatus() *admindoc.UpstreamWindow {
	if c.limit == nil {
		return nil
	}
	ws := &admindoc.UpstreamWindow{Waiting: c.limit.Waiting()}
	if c.limit.sched != nil {
		w, next := c.limit.Window()
		ws.Schedule = c.limit.sched.String()
		ws.Rule, ws.Limited, ws.Held = w.Rule, w.Limited(), w.Held()
		ws.RateBytesPerSec = w.Rate
		ws.Until = next
	}
	return ws
}
