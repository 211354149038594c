package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/tufclient"
	"github.com/relayd/relayd/pkg/wire"
)

// relay is an in-test relay on a real 127.0.0.1 listener: it serves TUF
// metadata (at /-/tuf/) and objects with Range (http.ServeContent, ETag =
// digest), and hook may take over any request.
type relay struct {
	srv *httptest.Server
	mu  sync.Mutex
	cat map[string][]byte // metadata by served name
	obj map[string][]byte
	// hook answers the request itself when it returns true.
	hook   func(w http.ResponseWriter, r *http.Request) bool
	ranges []string // Range headers of object requests
	gets   int      // object GETs
	metas  []string // metadata GETs, by served name
}

func newRelay(t *testing.T, cat map[string][]byte, files map[string][]byte) *relay {
	t.Helper()
	r := &relay{cat: cat, obj: files}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *relay) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	hook, cat := r.hook, r.cat
	if !strings.HasPrefix(req.URL.Path, "/-/") {
		r.gets++
		r.ranges = append(r.ranges, req.Header.Get("Range"))
	}
	if name, ok := strings.CutPrefix(req.URL.Path, wire.TUFPrefix); ok {
		r.metas = append(r.metas, name)
	}
	b, ok := r.obj[strings.TrimPrefix(req.URL.Path, "/")]
	meta, isMeta := cat[strings.TrimPrefix(req.URL.Path, wire.TUFPrefix)]
	r.mu.Unlock()
	if hook != nil && hook(w, req) {
		return
	}
	switch {
	case strings.HasPrefix(req.URL.Path, wire.TUFPrefix) && isMeta:
		w.Write(meta)
	case req.URL.Path == "/-/relays":
		http.NotFound(w, req) // a plain relay: no list
	case ok:
		w.Header().Set("ETag", digest.FromBytes(b).ETag())
		http.ServeContent(w, req, "", time.Time{}, bytes.NewReader(b))
	default:
		http.NotFound(w, req)
	}
}

func (r *relay) metaGets() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.metas...)
}

func (r *relay) objectGets() (int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gets, append([]string(nil), r.ranges...)
}

func testConfig(k *testRepo, dir string, relays ...*relay) Config {
	cfg := DefaultConfig()
	for _, r := range relays {
		cfg.Relays = append(cfg.Relays, r.srv.URL)
	}
	cfg.Root, cfg.Dir = k.root, dir
	cfg.StallTimeout, cfg.RetryBudget, cfg.BackoffMin, cfg.BackoffMax = 2*time.Second, 2*time.Second, 10*time.Millisecond, 50*time.Millisecond
	return cfg
}

func newAgent(t *testing.T, cfg Config) *Agent {
	t.Helper()
	a, err := New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func data(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed ^ byte(i>>9)
	}
	return b
}

// wantFile checks dir/p holds want.
func wantFile(t *testing.T, dir, p string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(dir, p))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, want %d (sha256 %s, want %s)", p, len(got), len(want), digest.FromBytes(got), digest.FromBytes(want))
	}
}

// noParts checks no temporary file is left under dir.
func noParts(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), partMarker) {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
}

// relaysDocFor is a /-/relays document listing urls.
func relaysDocFor(urls ...string) string {
	var parts []string
	for i, u := range urls {
		parts = append(parts, fmt.Sprintf(`{"name":"r%d","url":%q}`, i, u))
	}
	return `{"group":"g","relays":[` + strings.Join(parts, ",") + `]}`
}

func TestResumeOnNextRelayAfterTruncation(t *testing.T) {
	k := newRepo(t)
	big := data(1<<20, 1)
	files := map[string][]byte{"software/x/1/big.bin": big}
	cat := k.publish(t, 1, files)
	// Whichever relay the agent asks first announces the whole length
	// and hangs up after 300 KiB; the other serves the rest.
	var (
		cut   atomic.Bool
		first atomic.Pointer[relay]
	)
	r1, r2 := newRelay(t, cat, files), newRelay(t, cat, files)
	for _, r := range []*relay{r1, r2} {
		r.hook = func(w http.ResponseWriter, req *http.Request) bool {
			if req.URL.Path != "/software/x/1/big.bin" || cut.Swap(true) {
				return false
			}
			first.Store(r)
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			w.Header().Set("ETag", digest.FromBytes(big).ETag())
			w.Write(big[:300<<10])
			panic(http.ErrAbortHandler)
		}
	}
	dir := t.TempDir()
	a := newAgent(t, testConfig(k, dir, r1, r2))
	if _, err := a.Fetch(context.Background(), "software/x/1/big.bin"); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dir, "software/x/1/big.bin", big)
	if st := a.Stats(); st.Resumes != 1 {
		t.Fatalf("stats %+v, want 1 resume", st)
	}
	good := r1
	if first.Load() == r1 {
		good = r2
	}
	_, ranges := good.objectGets()
	if !containsPrefix(ranges, fmt.Sprintf("bytes=%d-", 300<<10)) {
		t.Fatalf("good relay saw Range headers %q, want one from byte %d", ranges, 300<<10)
	}
	noParts(t, dir)
}

func containsPrefix(list []string, p string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// hostile serves files (and the catalog) but breaks object requests with
// hook.
func hostileCase(t *testing.T, cfgMod func(*Config), hook func(good []byte) func(w http.ResponseWriter, r *http.Request) bool) error {
	t.Helper()
	k := newRepo(t)
	obj := data(200<<10, 3)
	files := map[string][]byte{"security/fix.bin": obj}
	cat := k.publish(t, 1, files)
	h := newRelay(t, cat, files)
	h.hook = hook(obj)
	dir := t.TempDir()
	cfg := testConfig(k, dir, h)
	cfg.RetryBudget = 500 * time.Millisecond
	if cfgMod != nil {
		cfgMod(&cfg)
	}
	a := newAgent(t, cfg)
	_, err := a.Fetch(context.Background(), "security/fix.bin")
	if err == nil {
		t.Fatal("fetch from a hostile relay succeeded")
	}
	if _, serr := os.Stat(filepath.Join(dir, "security/fix.bin")); !errors.Is(serr, fs.ErrNotExist) {
		t.Fatalf("a file was left at the final path after %v", err)
	}
	noParts(t, dir)
	return err
}

func TestHostileRelay(t *testing.T) {
	t.Parallel()
	isObj := func(r *http.Request) bool { return r.URL.Path == "/security/fix.bin" }
	cases := []struct {
		name string
		mod  func(*Config)
		hook func(good []byte) func(w http.ResponseWriter, r *http.Request) bool
		want error
	}{
		{"wrong bytes", nil, func(good []byte) func(http.ResponseWriter, *http.Request) bool {
			return func(w http.ResponseWriter, r *http.Request) bool {
				if !isObj(r) {
					return false
				}
				b := bytes.Clone(good)
				b[len(b)/2] ^= 1
				w.Write(b)
				return true
			}
		}, ErrDigestMismatch},
		{"endless body", nil, func(good []byte) func(http.ResponseWriter, *http.Request) bool {
			return func(w http.ResponseWriter, r *http.Request) bool {
				if !isObj(r) {
					return false
				}
				for r.Context().Err() == nil {
					if _, err := w.Write(good); err != nil {
						break
					}
				}
				return true
			}
		}, ErrSize},
		{"short body", nil, func(good []byte) func(http.ResponseWriter, *http.Request) bool {
			return func(w http.ResponseWriter, r *http.Request) bool {
				if !isObj(r) {
					return false
				}
				w.Write(good[:1000])
				return true
			}
		}, ErrSize},
		{"slow drip", func(c *Config) { c.StallTimeout, c.MinRate = 200*time.Millisecond, 64<<10 },
			func(good []byte) func(http.ResponseWriter, *http.Request) bool {
				return func(w http.ResponseWriter, r *http.Request) bool {
					if !isObj(r) {
						return false
					}
					w.Header().Set("Content-Length", fmt.Sprint(len(good)))
					for i := 0; r.Context().Err() == nil && i < len(good); i++ {
						w.Write(good[i : i+1])
						w.(http.Flusher).Flush()
						time.Sleep(10 * time.Millisecond)
					}
					return true
				}
			}, ErrStalled},
		{"redirect elsewhere", nil, func(good []byte) func(http.ResponseWriter, *http.Request) bool {
			return func(w http.ResponseWriter, r *http.Request) bool {
				if !isObj(r) {
					return false
				}
				http.Redirect(w, r, "http://127.0.0.2:1/evil", http.StatusFound)
				return true
			}
		}, ErrRedirect},
		{"endless timestamp", func(c *Config) { c.MaxCatalogBytes = 1 << 20 }, func(good []byte) func(http.ResponseWriter, *http.Request) bool {
			return func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path != wire.TUFPrefix+"timestamp.json" {
					return false
				}
				chunk := bytes.Repeat([]byte("x"), 64<<10)
				for r.Context().Err() == nil {
					if _, err := w.Write(chunk); err != nil {
						break
					}
				}
				return true
			}
		}, ErrCatalogTooLarge},
		{"metadata of another key", nil, func(good []byte) func(http.ResponseWriter, *http.Request) bool {
			other := newRepo(t).publish(t, 9, map[string][]byte{"security/fix.bin": good})
			return func(w http.ResponseWriter, r *http.Request) bool {
				b, ok := other[strings.TrimPrefix(r.URL.Path, wire.TUFPrefix)]
				if !ok || r.URL.Path == wire.TUFPrefix+"1.root.json" {
					return false
				}
				w.Write(b)
				return true
			}
		}, &metadata.ErrUnsignedMetadata{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := hostileCase(t, c.mod, c.hook)
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("error %v, want it to wrap ErrUnavailable after the retry budget", err)
			}
		})
	}
}

func TestSameHostRedirectFollowed(t *testing.T) {
	k := newRepo(t)
	obj := data(5000, 9)
	files := map[string][]byte{"other/a.txt": obj}
	r := newRelay(t, k.publish(t, 1, files), files)
	r.hook = func(w http.ResponseWriter, req *http.Request) bool {
		if req.URL.Path == "/moved/a.txt" {
			w.Write(obj)
			return true
		}
		if req.URL.Path == "/other/a.txt" {
			http.Redirect(w, req, "/moved/a.txt", http.StatusFound)
			return true
		}
		return false
	}
	dir := t.TempDir()
	if _, err := newAgent(t, testConfig(k, dir, r)).Fetch(context.Background(), "other/a.txt"); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dir, "other/a.txt", obj)
}

func TestRollbackRefused(t *testing.T) {
	k := newRepo(t)
	files := map[string][]byte{"security/a": data(100, 1)}
	r := newRelay(t, k.publish(t, 5, files), files)
	dir := t.TempDir()
	if _, err := newAgent(t, testConfig(k, dir, r)).Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.cat = k.publish(t, 4, files)
	r.mu.Unlock()
	a := newAgent(t, testConfig(k, dir, r)) // a new process: the trusted metadata says 5
	if g := a.Generation(); g != 5 {
		t.Fatalf("Generation() = %d after restart, want 5 from the state", g)
	}
	_, err := a.Sync(context.Background())
	if !errors.Is(err, tufclient.ErrRollback) {
		t.Fatalf("sync from a relay rolled back to generation 4: %v, want tufclient.ErrRollback", err)
	}
}

func TestSyncOnlyWhatChanged(t *testing.T) {
	k := newRepo(t)
	files := map[string][]byte{"security/a": data(3000, 1), "security/b": data(4000, 2), "software/p/1/c": data(5000, 3)}
	r := newRelay(t, k.publish(t, 1, files), files)
	dir := t.TempDir()
	cfg := testConfig(k, dir, r)
	cfg.Include = []string{"security/**"}
	res, err := newAgent(t, cfg).Sync(context.Background())
	if err != nil || res.Downloaded != 2 || res.UpToDate != 0 {
		t.Fatalf("first sync: %+v, %v; want 2 downloaded", res, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "software/p/1/c")); err == nil {
		t.Fatal("software/ synced although only security/** is included")
	}
	// Generation 2 changes b; a was tampered with locally.
	files2 := map[string][]byte{"security/a": files["security/a"], "security/b": data(4100, 4), "software/p/1/c": files["software/p/1/c"]}
	r.mu.Lock()
	r.cat, r.obj = k.publish(t, 2, files2), files2
	r.mu.Unlock()
	if err := os.WriteFile(filepath.Join(dir, "security/a"), data(3000, 99), 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := r.objectGets()
	res, err = newAgent(t, cfg).Sync(context.Background())
	if err != nil || res.Downloaded != 2 || res.Generation != 2 {
		t.Fatalf("second sync: %+v, %v; want a and b downloaded at generation 2", res, err)
	}
	wantFile(t, dir, "security/a", files2["security/a"])
	wantFile(t, dir, "security/b", files2["security/b"])
	// Nothing changed: nothing fetched.
	res, err = newAgent(t, cfg).Sync(context.Background())
	if after, _ := r.objectGets(); err != nil || res.Downloaded != 0 || res.UpToDate != 2 || after != before+2 {
		t.Fatalf("third sync: %+v, %v, %d object GETs (want %d)", res, err, after, before+2)
	}
}

func TestFetchSamePathTwice(t *testing.T) {
	k := newRepo(t)
	obj := data(300<<10, 5)
	files := map[string][]byte{"security/a": obj}
	r := newRelay(t, k.publish(t, 1, files), files)
	dir := t.TempDir()
	cfg := testConfig(k, dir, r)
	cfg.Workers = 4
	// Two downloads of one path would share its temporary file name
	// pattern: the second would delete the first's file under it.
	res, err := newAgent(t, cfg).Fetch(context.Background(), "security/a", "/security/a", "security//a")
	if err != nil {
		t.Fatal(err)
	}
	if gets, _ := r.objectGets(); res.Downloaded != 1 || gets != 1 {
		t.Fatalf("fetch of one path named three ways: %+v, %d object GETs; want 1 download", res, gets)
	}
	wantFile(t, dir, "security/a", obj)
	noParts(t, dir)
}

func TestStateSavedOncePerSync(t *testing.T) {
	k := newRepo(t)
	files := map[string][]byte{"security/a": data(3000, 1), "security/b": data(4000, 2)}
	r := newRelay(t, k.publish(t, 1, files), files)
	dir := t.TempDir()
	cfg := testConfig(k, dir, r)
	statePath := filepath.Join(dir, StateDir, stateFile)
	sync := func(a *Agent, wantSaves int) {
		t.Helper()
		if _, err := a.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := a.state.savesSoFar(); n != wantSaves {
			t.Fatalf("state saved %d times, want %d", n, wantSaves)
		}
	}
	a := newAgent(t, cfg)
	sync(a, 1) // a new generation, two files: one save
	before, err := os.Stat(statePath)
	if err != nil {
		t.Fatal(err)
	}
	sync(a, 1)                // nothing changed: not written again
	sync(newAgent(t, cfg), 0) // nor by the next process
	after, err := os.Stat(statePath)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Fatal("state.json was replaced although nothing changed")
	}
	// A file changed behind the agent's back is hashed again and
	// downloaded: one save for the sync.
	if err := os.WriteFile(filepath.Join(dir, "security/a"), data(3000, 9), 0o644); err != nil {
		t.Fatal(err)
	}
	sync(a, 2)
	wantFile(t, dir, "security/a", files["security/a"])
	// Fetch saves once too, and not at all when nothing changed.
	if _, err := a.Fetch(context.Background(), "security/b"); err != nil || a.state.savesSoFar() != 2 {
		t.Fatalf("fetch of an up-to-date file: %v, %d saves; want no new one", err, a.state.savesSoFar())
	}
}

func TestAllRelaysDownGivesUpWithinBudget(t *testing.T) {
	k := newRepo(t)
	r := newRelay(t, nil, nil)
	r.srv.Close()
	cfg := testConfig(k, t.TempDir(), r)
	cfg.RetryBudget = 300 * time.Millisecond
	start := time.Now()
	_, err := newAgent(t, cfg).Fetch(context.Background(), "x")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("error %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("gave up after %v with a 300ms budget", d)
	}
}

func TestWatchSyncsOnAnnouncement(t *testing.T) {
	k := newRepo(t)
	files := map[string][]byte{"security/a": data(100, 1)}
	r := newRelay(t, k.publish(t, 1, files), files)
	// Like a relay's hub: every stream is sent the current generation,
	// then each new one.
	var (
		mu      sync.Mutex
		cur     = uint64(1)
		changed = make(chan struct{})
	)
	announce := func(g uint64) {
		mu.Lock()
		cur = g
		close(changed)
		changed = make(chan struct{})
		mu.Unlock()
	}
	r.hook = func(w http.ResponseWriter, req *http.Request) bool {
		if req.URL.Path != "/-/events" {
			return false
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "retry: 2000\n\n")
		for {
			mu.Lock()
			g, ch := cur, changed
			mu.Unlock()
			fmt.Fprintf(w, "event: catalog\ndata: {\"generation\":%d}\n\n", g)
			w.(http.Flusher).Flush()
			select {
			case <-req.Context().Done():
				return true
			case <-ch:
			}
		}
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type outcome struct {
		res Result
		err error
	}
	synced := make(chan outcome, 4)
	a := newAgent(t, testConfig(k, dir, r))
	done := make(chan error, 1)
	go func() { done <- a.Watch(ctx, func(res Result, err error) { synced <- outcome{res, err} }) }()
	next := func(what string) Result {
		t.Helper()
		select {
		case o := <-synced:
			if o.err != nil {
				t.Fatalf("%s: %v", what, o.err)
			}
			return o.res
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no sync within 10s", what)
			return Result{}
		}
	}
	if res := next("sync at connect"); res.Generation != 1 {
		t.Fatalf("first sync at generation %d", res.Generation)
	}
	files2 := map[string][]byte{"security/a": data(100, 2)}
	r.mu.Lock()
	r.cat, r.obj = k.publish(t, 2, files2), files2
	r.mu.Unlock()
	announce(2)
	if res := next("sync after announcing generation 2"); res.Generation != 2 || res.Downloaded != 1 {
		t.Fatalf("sync after the announcement: %+v", res)
	}
	wantFile(t, dir, "security/a", files2["security/a"])
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Watch returned %v when its context ended", err)
	}
}

func TestConfigErrors(t *testing.T) {
	k := newRepo(t)
	for name, mod := range map[string]func(*Config){
		"no relay":  func(c *Config) { c.Relays = nil },
		"bad relay": func(c *Config) { c.Relays = []string{"ftp://x"} },
		"no root":   func(c *Config) { c.Root = nil },
		"bad root":  func(c *Config) { c.Root = []byte("{}") },
		"no dir":    func(c *Config) { c.Dir = "" },
		// The include patterns are package glob's; a bad one is a
		// config error, found once, in New.
		"absolute include": func(c *Config) { c.Include = []string{"/abs"} },
		"empty segment":    func(c *Config) { c.Include = []string{"security/"} },
	} {
		cfg := DefaultConfig()
		cfg.Relays, cfg.Root, cfg.Dir = []string{"http://127.0.0.1:1"}, k.root, t.TempDir()
		mod(&cfg)
		if _, err := New(cfg, zerolog.Nop()); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
	cfg := DefaultConfig()
	cfg.Relays, cfg.Root, cfg.Dir, cfg.Include = []string{"http://127.0.0.1:1"}, k.root, t.TempDir(), []string{"security/**"}
	a, err := New(cfg, zerolog.Nop())
	if err != nil || !a.include.Match("security/x/y") || a.include.Match("securityx/a") {
		t.Errorf("security/**: %v", err)
	}
}

// A relay that serves an expired timestamp (a frozen relay, or an origin
// that stopped re-signing) gets nothing installed: the sync fails saying
// since when, and the directory keeps what the last fresh metadata listed.
func TestExpiredMetadataInstallsNothing(t *testing.T) {
	k := newRepo(t)
	old := map[string][]byte{"security/a": data(100, 1)}
	r := newRelay(t, k.publish(t, 1, old), old)
	dir := t.TempDir()
	if _, err := newAgent(t, testConfig(k, dir, r)).Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	expired := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	k.expires = expired
	files := map[string][]byte{"security/a": data(100, 2), "security/b": data(50, 3)}
	r.mu.Lock()
	r.cat, r.obj = k.publish(t, 2, files), files
	r.mu.Unlock()
	cfg := testConfig(k, dir, r)
	cfg.RetryBudget = 100 * time.Millisecond
	_, err := newAgent(t, cfg).Sync(context.Background())
	if !errors.Is(err, tufclient.ErrExpired) || !strings.Contains(err.Error(), "expired since") {
		t.Fatalf("sync with an expired timestamp: %v, want tufclient.ErrExpired saying since when", err)
	}
	wantFile(t, dir, "security/a", old["security/a"])
	if _, err := os.Stat(filepath.Join(dir, "security/b")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("security/b of the expired generation was written (%v)", err)
	}
	if gets, _ := r.objectGets(); gets != 1 {
		t.Fatalf("%d object GETs, want only the first sync's", gets)
	}
	noParts(t, dir)
}

// Metadata is fetched from the relay being tried; a versioned file it
// does not have comes from another relay of the group (it is pinned by
// the timestamp and snapshot, whoever serves it). A sync with nothing new
// is one request: timestamp.json.
func TestMetadataFailoverAndNoChangeSync(t *testing.T) {
	k := newRepo(t)
	files := map[string][]byte{"security/a": data(100, 1)}
	cat := k.publish(t, 1, files)
	without := func(suffix string) map[string][]byte {
		m := map[string][]byte{}
		for name, b := range cat {
			if !strings.HasSuffix(name, suffix) {
				m[name] = b
			}
		}
		return m
	}
	// Whichever relay the agent tries first (the order is its own) lacks
	// one versioned file that the other has: only a failover for that
	// file completes the update.
	r1, r2 := newRelay(t, without(".targets.json"), files), newRelay(t, without(".snapshot.json"), files)
	dir := t.TempDir()
	a := newAgent(t, testConfig(k, dir, r1, r2))
	if _, err := a.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dir, "security/a", files["security/a"])
	if st := a.Stats(); st.Failovers == 0 {
		t.Fatalf("stats %+v: the update completed without a failover", st)
	}
	before := len(r1.metaGets()) + len(r2.metaGets())
	if _, err := a.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	all := append(r1.metaGets(), r2.metaGets()...)
	if n := len(all) - before; n != 1 {
		t.Fatalf("a sync with nothing new asked for %d metadata files (%q), want 1 (timestamp.json)", n, all[before:])
	}
}

// The output directory an agent creates is readable by the software that
// installs from it; only the trusted metadata inside is the agent's alone.
func TestOutputDirCreatedReadable(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	k := newRepo(t)
	files := map[string][]byte{"security/a": data(100, 1)}
	r := newRelay(t, k.publish(t, 1, files), files)
	dir := filepath.Join(t.TempDir(), "out")
	if _, err := newAgent(t, testConfig(k, dir, r)).Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]fs.FileMode{dir: 0o755, filepath.Join(dir, StateDir): 0o750} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm() &^ 0o022; got != want&^0o022 {
			t.Errorf("%s: mode %v, want %v (umask aside)", p, fi.Mode().Perm(), want)
		}
	}
}
