package e2e

// Compression and deltas between relays (issue 16), end to end through a
// three-level tree: origin → hq (mirror) → branch (mirror) → leaf (proxy),
// and a second branch whose parent is hostile (it corrupts every dcz
// answer). The object is real data: relayd's own source as a tar at two
// consecutive commits.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/contentcoding"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/wire"
)

// sourceTar is relayd's pkg/ at commit, as a tar.
func sourceTar(t *testing.T, commit string) []byte {
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("no git checkout: %v", err)
	}
	out, err := exec.Command("git", "-C", strings.TrimSpace(string(top)), "archive", "--format=tar", commit, "pkg").Output()
	if err != nil {
		t.Skipf("git archive %s: %v", commit, err)
	}
	return out
}

// objectBytes sums the body bytes of the GETs of path that group's relays
// sent, in an access log.
func objectBytes(logText, path, group string) (gets int, bytes int64) {
	for _, m := range logLines(logText) {
		if m["message"] == "request" && m["method"] == http.MethodGet && m["path"] == path && m["via"] == group {
			gets++
			if b, ok := m["bytes"].(float64); ok {
				bytes += int64(b)
			}
		}
	}
	return gets, bytes
}

// hostileParent is a reverse proxy in front of a relay that flips a byte
// in the middle of every dcz answer, and names itself wherever the relay
// lists its group (/-/relays, the event stream) so that its child keeps
// coming back to it.
func hostileParent(t *testing.T, parentURL string, corrupted *atomic.Int64) *httptest.Server {
	target, err := url.Parse(parentURL)
	if err != nil {
		t.Fatal(err)
	}
	var self string
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1
	rp.ModifyResponse = func(resp *http.Response) error {
		rewrite := func(f func([]byte) []byte) error {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			b = f(b)
			resp.Body = io.NopCloser(bytes.NewReader(b))
			resp.ContentLength = int64(len(b))
			resp.Header.Set("Content-Length", fmt.Sprint(len(b)))
			return nil
		}
		switch {
		case resp.Request.URL.Path == wire.EventsPath:
			// Relay lists are pushed on the stream too: line by line.
			pr, pw := io.Pipe()
			body := resp.Body
			go func() {
				br := bufio.NewReader(body)
				for {
					line, err := br.ReadBytes('\n')
					if _, werr := pw.Write(bytes.ReplaceAll(line, []byte(parentURL), []byte(self))); werr != nil || err != nil {
						_ = body.Close()
						pw.CloseWithError(err)
						return
					}
				}
			}()
			resp.Body = pr
			return nil
		case resp.Request.URL.Path == wire.RelaysPath:
			return rewrite(func(b []byte) []byte { return bytes.ReplaceAll(b, []byte(parentURL), []byte(self)) })
		case resp.Header.Get("Content-Encoding") == wire.CodingDcz:
			corrupted.Add(1)
			return rewrite(func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b })
		}
		return nil
	}
	// self is known before the server serves anything: its handlers read it.
	srv := httptest.NewUnstartedServer(rp)
	self = "http://" + srv.Listener.Addr().String()
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func TestDeltasThroughTheTree(t *testing.T) {
	t.Parallel()
	c := newClient()
	const path = "software/linux-amd64/relayd/src.tar"
	v1, v2 := sourceTar(t, "1a3492b"), sourceTar(t, "c681af2")
	tree, keys, root := publishedTree(t, map[string][]byte{path: v1, "security/2026/kb-001.patch": makeData(1601, 4<<10)})
	origin := startRelayd(t, "--mode", "origin", "--root", tree, "--node", "origin")
	mirror := func(node, group, upstream string) *treeRelay {
		return startTreeRelay(t, node, group, "mirror", "", "--upstream", upstream, "--root", root, "--mirror-interval", "1s")
	}
	hq := mirror("hq-1", "hq", origin.URL)
	br := mirror("br-1", "branch", hq.URL)
	var corrupted atomic.Int64
	evil := hostileParent(t, hq.URL, &corrupted)
	brEvil := mirror("br-evil", "branch-evil", evil.URL)
	leaf := startTreeRelay(t, "leaf-1", "leaf", "proxy", "", "--upstream", br.URL, "--root", root, "--mirror-interval", "1s")
	waitGen := func(g uint64, rs ...*treeRelay) {
		for _, r := range rs {
			eventually(t, 60*time.Second, fmt.Sprintf("%s to hold generation %d", r.node, g), func() error {
				if got := catalogGen(c, r.URL); got != g {
					return fmt.Errorf("generation %d", got)
				}
				return nil
			})
		}
	}
	waitGen(1, hq, br, brEvil, leaf)
	wantObject(t, get(t, c, http.MethodGet, leaf.URL+"/"+path), v1, "leaf, generation 1")

	// Generation 2: the object changes by a few percent of its bytes.
	marks := map[string][2]int64{}
	mark := func(name string, r *treeRelay, child string) {
		n, b := objectBytes(r.Log(), "/"+path, child)
		marks[name] = [2]int64{int64(n), b}
	}
	mark("hq", hq, "branch")
	mark("br", br, "leaf")
	writeFiles(t, tree, map[string][]byte{path: v2})
	publish(t, tree, keys)
	waitGen(2, hq, br, brEvil, leaf)
	wantObject(t, get(t, c, http.MethodGet, leaf.URL+"/"+path), v2, "leaf, generation 2")
	wantObject(t, get(t, c, http.MethodGet, br.URL+"/"+path), v2, "branch, generation 2")
	wantObject(t, get(t, c, http.MethodGet, brEvil.URL+"/"+path), v2, "the hostile parent's child, generation 2")

	// WAN bytes on each link: a fraction of the object.
	for _, link := range []struct {
		name   string
		parent *treeRelay
		child  string
	}{{"hq", hq, "branch"}, {"br", br, "leaf"}} {
		eventually(t, 5*time.Second, "the "+link.name+" access log", func() error {
			n, b := objectBytes(link.parent.Log(), "/"+path, link.child)
			gets, sent := int64(n)-marks[link.name][0], b-marks[link.name][1]
			if gets < 1 {
				return fmt.Errorf("no GET of /%s logged since generation 2", path)
			}
			ratio := float64(sent) / float64(len(v2))
			t.Logf("link below %s: %d GETs, %d bytes for a %d-byte object (%.3fx)", link.name, gets, sent, len(v2), ratio)
			if ratio > 0.1 {
				return stopErr{Err: fmt.Errorf("link below %s carried %d bytes (%.3fx) of a %d-byte object, want a delta", link.name, sent, ratio, len(v2))}
			}
			return nil
		})
	}

	// The hostile parent's delta was refused, counted, and the whole object
	// fetched instead.
	eventually(t, 10*time.Second, "br-evil to count the refused delta", func() error {
		m := get(t, c, http.MethodGet, brEvil.admin+"/metrics")
		for _, l := range strings.Split(string(m.body), "\n") {
			var n int
			if _, err := fmt.Sscanf(l, "relayd_delta_fallbacks_total %d", &n); err == nil && n >= 1 {
				return nil
			}
		}
		return fmt.Errorf("relayd_delta_fallbacks_total is not at least 1 in br-evil's metrics")
	})
	if corrupted.Load() < 1 {
		t.Error("the hostile parent corrupted no delta: br-evil went around it")
	}

	// A parent that does not hold the dictionary answers plainly (zstd).
	r := get(t, c, http.MethodGet, br.URL+"/"+path, "Accept-Encoding", "dcz, zstd",
		wire.AvailableDictionaryHeader, contentcoding.FormatAvailableDictionary(digest.FromBytes([]byte("a version nobody has"))))
	if ce := r.header.Get("Content-Encoding"); ce != wire.CodingZstd {
		t.Errorf("dcz against an unknown dictionary: Content-Encoding %q, want zstd", ce)
	}
}
