// Package e2e builds the real relayd binary and runs it as separate
// processes on 127.0.0.1: origins, proxies, crashes, full disks and real
// clients (curl, go mod download).
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relayd/relayd/internal/proctest"
	"github.com/relayd/relayd/pkg/tufclient"
)

// relaydBin is the binary built once by TestMain.
var relaydBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "relayd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	relaydBin, err = proctest.Build(dir, "github.com/relayd/relayd/cmd/relayd")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// ---------------------------------------------------------------------------
// relayd processes and polling: internal/proctest, under the short names
// these tests have always used.

type (
	proc    = proctest.Proc
	stopErr = proctest.StopErr
)

var (
	startProc     = proctest.Start
	cleanEnv      = proctest.CleanEnv
	logLines      = proctest.LogLines
	countRequests = proctest.CountRequests
	eventually    = proctest.Eventually
	consistently  = proctest.Consistently
	grpFreeGossip = proctest.FreeTCPUDPAddr // memberlist binds TCP and UDP on the gossip port
)

// startRelayd starts the relayd built by TestMain (proctest.StartRelayd).
func startRelayd(t testing.TB, args ...string) *proc {
	t.Helper()
	return proctest.StartRelayd(t, relaydBin, args...)
}

// startRelaydIn is startRelayd with dir as the working directory.
func startRelaydIn(t testing.TB, dir string, args ...string) *proc {
	t.Helper()
	return proctest.StartRelaydIn(t, relaydBin, dir, args...)
}

// runRelayd runs a relayd command to completion (killed after timeout).
func runRelayd(t testing.TB, timeout time.Duration, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return proctest.Run(t, timeout, append([]string{relaydBin}, args...)...)
}

// waitChan waits for ch to close, failing after timeout.
func waitChan(t testing.TB, ch <-chan struct{}, timeout time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(timeout):
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// ---------------------------------------------------------------------------
// data

// makeData returns n deterministic pseudo-random bytes for seed.
func makeData(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), 'e', '2', 'e'})
	_, _ = r.Read(b)
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func fileSHA(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha(b)
}

// ---------------------------------------------------------------------------
// in-test origin

// testObject is one object an in-test origin serves.
type testObject struct {
	data   []byte
	header http.Header // extra response headers (Cache-Control, …)
	// chunk and delay throttle the body: chunk bytes, flush, sleep delay.
	// chunk 0 writes everything at once.
	chunk int
	delay time.Duration
	// holdAt > 0 stops the body after holdAt bytes until release is
	// closed; held is closed when it gets there.
	holdAt  int
	release chan struct{}
	held    chan struct{}
	// sentAll is closed once every byte has been written and flushed.
	sentAll chan struct{}
	// noLength sends the body without Content-Length (chunked).
	noLength bool

	sent     atomic.Int64
	heldOnce sync.Once
	allOnce  sync.Once
}

func newObject(data []byte, cacheControl string) *testObject {
	o := &testObject{data: data, header: http.Header{}, held: make(chan struct{}), sentAll: make(chan struct{}), release: make(chan struct{})}
	if cacheControl != "" {
		o.header.Set("Cache-Control", cacheControl)
	}
	return o
}

// testOrigin is an HTTP origin in the test process on a real 127.0.0.1
// listener, counting the GETs it gets per path.
type testOrigin struct {
	URL  string
	srv  *http.Server
	ln   net.Listener
	stop chan struct{} // closed when the origin is shut

	mu       sync.Mutex
	objects  map[string]*testObject
	gets     map[string]int
	paths    []string // every request's escaped path, in order
	stopOnce sync.Once
}

func startOrigin(t testing.TB) *testOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &testOrigin{URL: "http://" + ln.Addr().String(), ln: ln, stop: make(chan struct{}),
		objects: map[string]*testObject{}, gets: map[string]int{}}
	o.srv = &http.Server{Handler: o, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = o.srv.Serve(ln) }()
	t.Cleanup(o.close)
	return o
}

// close stops the origin: listener and connections closed, held and
// throttled handlers return.
func (o *testOrigin) close() {
	o.stopOnce.Do(func() {
		close(o.stop)
		_ = o.srv.Close()
	})
}

func (o *testOrigin) set(path string, obj *testObject) {
	o.mu.Lock()
	o.objects[path] = obj
	o.mu.Unlock()
}

// getCount is the number of GETs path has received.
func (o *testOrigin) getCount(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.gets[path]
}

func (o *testOrigin) seenPaths() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.paths...)
}

func (o *testOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	if o.objects[r.URL.Path] == nil && strings.HasPrefix(r.URL.Path, "/-/") {
		// A relay probing for the relay API (/-/relays, /-/events,
		// /-/report): a plain server has none. Not counted as traffic.
		o.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	o.paths = append(o.paths, r.URL.EscapedPath())
	if r.Method == http.MethodGet {
		o.gets[r.URL.Path]++
	}
	obj := o.objects[r.URL.Path]
	o.mu.Unlock()
	if obj == nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	for k, v := range obj.header {
		h[k] = v
	}
	h.Set("Content-Type", "application/octet-stream")
	if !obj.noLength {
		h.Set("Content-Length", strconv.Itoa(len(obj.data)))
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(w)
	chunk := obj.chunk
	if chunk <= 0 {
		chunk = len(obj.data)
	}
	for off := 0; off < len(obj.data); {
		if obj.holdAt > 0 && off == obj.holdAt {
			obj.heldOnce.Do(func() { close(obj.held) })
			select {
			case <-obj.release:
			case <-r.Context().Done():
				return
			case <-o.stop:
				return
			}
		}
		end := min(off+chunk, len(obj.data))
		if obj.holdAt > off && obj.holdAt < end {
			end = obj.holdAt
		}
		if _, err := w.Write(obj.data[off:end]); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		off = end
		obj.sent.Store(int64(off))
		if obj.delay > 0 && off < len(obj.data) {
			t := time.NewTimer(obj.delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			case <-o.stop:
				t.Stop()
				return
			}
		}
	}
	obj.allOnce.Do(func() { close(obj.sentAll) })
}

// ---------------------------------------------------------------------------
// HTTP client side

// newClient is a client that never uses a proxy and never asks for gzip.
func newClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DisableCompression:  true,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     30 * time.Second,
		},
		Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// response is a whole response read into memory.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) cache() string { return r.header.Get("X-Relay-Cache") }

// get performs one request; hdr are extra request headers (key, value pairs).
func get(t testing.TB, c *http.Client, method, url string, hdr ...string) response {
	t.Helper()
	r, err := tryGet(c, method, url, hdr...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

func tryGet(c *http.Client, method, url string, hdr ...string) (response, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return response{}, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{status: resp.StatusCode, header: resp.Header, body: body}, fmt.Errorf("read body after %d bytes: %w", len(body), err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// wantObject checks a 200 with the exact bytes of data.
func wantObject(t testing.TB, r response, data []byte, what string) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("%s: status %d, want 200; body %q", what, r.status, truncate(r.body))
	}
	if len(r.body) != len(data) || sha(r.body) != sha(data) {
		t.Fatalf("%s: got %d bytes sha256 %s, want %d bytes sha256 %s", what, len(r.body), sha(r.body), len(data), sha(data))
	}
}

// wantJSONError checks an error answer: status, JSON body and code.
func wantJSONError(t testing.TB, r response, status int, code, what string) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: status %d, want %d; body %q", what, r.status, status, truncate(r.body))
		return
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	var body struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Errorf("%s: body %q is not JSON: %v", what, truncate(r.body), err)
		return
	}
	if body.Code != code || body.Error == "" {
		t.Errorf("%s: body %s, want code %q and a non-empty error", what, bytes.TrimSpace(r.body), code)
	}
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// rawRequest sends a request byte for byte over a new connection (Go's
// client would clean the path) and reads the response.
func rawRequest(t testing.TB, addr, raw string) response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("raw request %q: %v", firstLine(raw), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\r\n")
	return l
}

// streamGet is a GET whose body is read in the background, counting bytes
// and hashing them, so a test can watch its progress.
type streamGet struct {
	status  int
	header  http.Header
	got     atomic.Int64
	done    chan struct{}
	err     error  // valid after done
	sum     string // valid after done
	headers chan struct{}
	// reached is closed as soon as threshold bytes have been read (if
	// threshold > 0), so a test can act on it without polling delay.
	threshold int64
	reached   chan struct{}
}

func startStreamGet(ctx context.Context, c *http.Client, url string) *streamGet {
	return startStreamGetAt(ctx, c, url, 0)
}

func startStreamGetAt(ctx context.Context, c *http.Client, url string, threshold int64) *streamGet {
	s := &streamGet{done: make(chan struct{}), headers: make(chan struct{}), threshold: threshold, reached: make(chan struct{})}
	var once sync.Once
	go func() {
		defer close(s.done)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			s.err = err
			close(s.headers)
			return
		}
		resp, err := c.Do(req)
		if err != nil {
			s.err = err
			close(s.headers)
			return
		}
		defer resp.Body.Close()
		s.status, s.header = resp.StatusCode, resp.Header
		close(s.headers)
		h := sha256.New()
		buf := make([]byte, 64<<10)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				h.Write(buf[:n])
				if got := s.got.Add(int64(n)); s.threshold > 0 && got >= s.threshold {
					once.Do(func() { close(s.reached) })
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				s.err = err
				return
			}
		}
		s.sum = hex.EncodeToString(h.Sum(nil))
	}()
	return s
}

// wantData waits for the body to end and checks it is data.
func (s *streamGet) wantData(t testing.TB, data []byte, timeout time.Duration, what string) {
	t.Helper()
	waitChan(t, s.done, timeout, what+" to finish")
	if s.err != nil {
		t.Fatalf("%s: %v (after %d bytes)", what, s.err, s.got.Load())
	}
	if s.status != http.StatusOK {
		t.Fatalf("%s: status %d", what, s.status)
	}
	if s.got.Load() != int64(len(data)) || s.sum != sha(data) {
		t.Fatalf("%s: got %d bytes sha256 %s, want %d bytes sha256 %s", what, s.got.Load(), s.sum, len(data), sha(data))
	}
}

// ---------------------------------------------------------------------------
// data directory checks

// dirNames lists the names in dir, sorted.
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// checkBlobs checks that every file under DATA/blobs is a whole blob: its
// name is the sha256 of its bytes. It returns how many there are.
func checkBlobs(t testing.TB, dataDir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(dataDir, "blobs"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if got := sha(b); got != d.Name() {
			t.Errorf("blob %s holds %d bytes with sha256 %s: a partial or wrong blob", p, len(b), got)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk blobs: %v", err)
	}
	return n
}

// ---------------------------------------------------------------------------
// publishing: the tree's TUF repository, made with the real CLI

// tufRoles are the top-level roles publishedTree makes a key for.
var tufRoles = []string{"root", "targets", "snapshot", "timestamp"}

// tufKeys makes a key pair for each top-level TUF role with `relayd
// keygen --role NAME` in a new directory, and returns the directory.
func tufKeys(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	for _, role := range tufRoles {
		if out, stderr, err := runRelayd(t, 30*time.Second, "keygen", "--role", role, "--out", dir); err != nil {
			t.Fatalf("relayd keygen --role %s: %v\n%s%s", role, err, out, stderr)
		}
	}
	return dir
}

// publishedTree writes files into a new tree, makes a key for every
// top-level role, creates the TUF repository (`relayd tuf init TREE
// --keys DIR`) and publishes generation 1 (`relayd publish TREE --keys
// DIR`, with args). It returns the tree, the keys directory and the trusted
// root relays and agents are given: TREE/-/tuf/1.root.json.
func publishedTree(t testing.TB, files map[string][]byte, args ...string) (tree, keys, root string) {
	t.Helper()
	tree = t.TempDir()
	writeFiles(t, tree, files)
	keys, root = initTree(t, tree)
	publish(t, tree, keys, args...)
	if g := tsGeneration(readFile(t, timestampFile(tree))); g != 1 {
		t.Fatalf("the first publish wrote generation %d, want 1", g)
	}
	return tree, keys, root
}

// initTree makes a key for every top-level role and creates the TUF
// repository of tree (`relayd tuf init TREE --keys DIR`), publishing
// nothing yet; it returns the keys directory and the trusted root.
func initTree(t testing.TB, tree string) (keys, root string) {
	t.Helper()
	keys = tufKeys(t)
	if out, stderr, err := runRelayd(t, 30*time.Second, "tuf", "init", tree, "--keys", keys); err != nil {
		t.Fatalf("relayd tuf init %s: %v\n%s%s", tree, err, out, stderr)
	}
	return keys, filepath.Join(tree, "-", "tuf", "1.root.json")
}

// publish runs `relayd publish TREE --keys DIR` with args and returns its
// output.
func publish(t testing.TB, tree, keys string, args ...string) string {
	t.Helper()
	out, stderr, err := runRelayd(t, 60*time.Second, append([]string{"publish", tree, "--keys", keys}, args...)...)
	if err != nil {
		t.Fatalf("relayd publish %s: %v\n%s%s", tree, err, out, stderr)
	}
	return out
}

// timestampFile is the path of a published tree's timestamp.json.
func timestampFile(tree string) string { return filepath.Join(tree, "-", "tuf", "timestamp.json") }

// timestampDoc is what the tests read of a timestamp.json (not verified:
// the relays and agents under test do that).
type timestampDoc struct {
	Signed struct {
		Version int64     `json:"version"`
		Expires time.Time `json:"expires"`
		Meta    map[string]struct {
			Version uint64 `json:"version"`
		} `json:"meta"`
	} `json:"signed"`
}

func parseTimestamp(b []byte) (timestampDoc, error) {
	var d timestampDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("timestamp.json: %w", err)
	}
	return d, nil
}

// tsGeneration is the generation (snapshot version) a timestamp.json
// names, 0 if it does not parse.
func tsGeneration(b []byte) uint64 {
	d, err := parseTimestamp(b)
	if err != nil {
		return 0
	}
	return d.Signed.Meta["snapshot.json"].Version
}

// tsVersion is the version of a timestamp.json, 0 if it does not parse.
func tsVersion(b []byte) int64 {
	d, _ := parseTimestamp(b)
	return d.Signed.Version
}

// httpMeta is a tufclient.Fetcher of one node's /-/tuf/, for tests that
// verify what a node serves as a client would.
type httpMeta struct {
	c    *http.Client
	base string
}

// transportError is an httpMeta request that got no answer.
type transportError struct{ error }

func (e transportError) Unwrap() error { return e.error }

func (h httpMeta) FetchMeta(ctx context.Context, name string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base+"/-/tuf/"+name, nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.c.Do(req)
	if err != nil {
		return nil, transportError{err}
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, fmt.Errorf("%s: %w", name, tufclient.ErrNotFound)
	default:
		return nil, fmt.Errorf("%s: status %d", name, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, transportError{err}
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: more than %d bytes", name, limit)
	}
	return b, nil
}

// keygen makes one role key pair (targets) with `relayd keygen --role`
// and returns its files.
func keygen(t testing.TB) (pub, key string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	if out, stderr, err := runRelayd(t, 30*time.Second, "keygen", "--role", "targets", "--out", dir); err != nil {
		t.Fatalf("relayd keygen --role targets: %v\n%s%s", err, out, stderr)
	}
	return filepath.Join(dir, "targets.pub"), filepath.Join(dir, "targets.key")
}
