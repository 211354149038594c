package hostile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/internal/proctest"
	"github.com/relayd/relayd/pkg/tufrepo"
)

// relaydBin and evilBin are built once by TestMain.
var relaydBin, evilBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "relayd-hostile-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostile:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	for _, b := range []struct {
		dst *string
		pkg string
	}{
		{&relaydBin, "github.com/relayd/relayd/cmd/relayd"},
		{&evilBin, "github.com/relayd/relayd/test/hostile/evilrelay"},
	} {
		if *b.dst, err = proctest.Build(dir, b.pkg); err != nil {
			fmt.Fprintln(os.Stderr, "hostile:", err)
			return 1
		}
	}
	return m.Run()
}

// tree is a content tree published as a TUF repository with fresh keys.
type tree struct {
	Dir   string            // the published directory (objects and -/tuf/)
	Root  string            // -/tuf/1.root.json, for --root
	Keys  string            // a key per top-level role
	Files map[string][]byte // path (no leading slash) → bytes
}

// publishTree writes files into a new directory and publishes it as a
// TUF repository with new keys (pkg/tufrepo, as `relayd tuf init` and
// `relayd publish` do).
func publishTree(t testing.TB, files map[string][]byte) *tree {
	t.Helper()
	tr := &tree{Dir: filepath.Join(t.TempDir(), "tree"), Keys: filepath.Join(t.TempDir(), "keys"), Files: files}
	for p, b := range files {
		name := filepath.Join(tr.Dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	roles := map[string]tufrepo.RoleKeys{}
	for _, r := range tufrepo.TopRoles {
		_, pub, _, err := tufrepo.GenerateKey(tr.Keys, r)
		if err != nil {
			t.Fatal(err)
		}
		k, err := tufrepo.LoadPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		roles[r] = tufrepo.RoleKeys{Keys: []*metadata.Key{k}, Threshold: 1}
	}
	ring := tr.ring(t)
	if _, err := tufrepo.Init(tr.Dir, ring, roles, tufrepo.Options{Workers: 1}); err != nil {
		t.Fatal(err)
	}
	tr.publish(t)
	tr.Root = filepath.Join(tr.Dir, "-", "tuf", "1.root.json")
	return tr
}

func (tr *tree) ring(t testing.TB) *tufrepo.KeyRing {
	t.Helper()
	ring, err := tufrepo.LoadKeyRing(nil, []string{tr.Keys})
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

// publish publishes the tree as it is now and returns the generation.
func (tr *tree) publish(t testing.TB) uint64 {
	t.Helper()
	r, err := tufrepo.Publish(context.Background(), tr.Dir, tr.ring(t), tufrepo.Options{Workers: 1})
	if err != nil {
		t.Fatalf("publish %s: %v", tr.Dir, err)
	}
	return uint64(r.Generation)
}

// metaPath is the metadata file every relay asks first: a relay that
// verifies has nothing until it verifies.
const metaPath = "/-/tuf/timestamp.json"

// randomBytes is n deterministic pseudo-random bytes for seed.
func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 'h', 'o', 's', 't'}).Read(b)
	return b
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// startEvil starts evilrelay serving dir with the given rules
// (PATH=BEHAVIOUR, see evilrelay's doc) and waits until it answers.
func startEvil(t testing.TB, dir string, rules ...string) *proctest.Proc {
	t.Helper()
	argv := []string{evilBin, "--dir", dir, "--endless-for", "30s"}
	for _, r := range rules {
		argv = append(argv, "--evil", r)
	}
	p := proctest.Start(t, "evilrelay", argv, nil, "")
	p.WaitReady(t)
	return p
}

// setEvil replaces a running evilrelay's rules.
func setEvil(t testing.TB, evil *proctest.Proc, rules ...string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, evil.URL+"/-/evil", strings.NewReader(strings.Join(rules, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := plainClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		t.Fatalf("set evilrelay rules %q: %s %s", rules, resp.Status, b)
	}
}

// startRelayd starts relayd serve (proctest.RelaydArgv defaults plus args).
func startRelayd(t testing.TB, args ...string) *proctest.Proc {
	t.Helper()
	return proctest.StartRelayd(t, relaydBin, args...)
}

// plainClient never uses a proxy, never asks for gzip and gives up after
// 30s: what a careful agent would be.
var plainClient = &http.Client{
	Transport: &http.Transport{Proxy: nil, DisableCompression: true, MaxIdleConnsPerHost: 64},
	Timeout:   30 * time.Second,
}

// answer is one response read whole (up to max bytes of body).
type answer struct {
	Status int
	Header http.Header
	Body   []byte
	Err    error // a transport or body error (the body may be short)
}

// do sends method url with extra headers (key, value pairs) and reads
// at most max bytes of the body.
func do(method, url string, max int64, hdr ...string) answer {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return answer{Err: err}
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := plainClient.Do(req)
	if err != nil {
		return answer{Err: err}
	}
	defer resp.Body.Close()
	a := answer{Status: resp.StatusCode, Header: resp.Header}
	a.Body, a.Err = io.ReadAll(io.LimitReader(resp.Body, max))
	return a
}
