package tufrepo

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// fixture is a tree with keys for every top-level role.
type fixture struct {
	t     testing.TB
	tree  string
	keys  string
	ring  *KeyRing
	now   time.Time
	opt   Options
	roles map[string]RoleKeys
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	base := t.TempDir()
	f := &fixture{t: t, tree: filepath.Join(base, "tree"), keys: filepath.Join(base, "keys"),
		now: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), roles: map[string]RoleKeys{}}
	f.opt = Options{Now: func() time.Time { return f.now }, Workers: 2}
	for _, r := range TopRoles {
		f.roles[r] = RoleKeys{Keys: []*metadata.Key{f.keygen(r)}, Threshold: 1}
	}
	ring, err := LoadKeyRing(nil, []string{f.keys})
	if err != nil {
		t.Fatal(err)
	}
	f.ring = ring
	if err := os.MkdirAll(f.tree, 0o755); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) keygen(name string) *metadata.Key {
	f.t.Helper()
	_, pub, _, err := GenerateKey(f.keys, name)
	if err != nil {
		f.t.Fatal(err)
	}
	k, err := LoadPublicKey(pub)
	if err != nil {
		f.t.Fatal(err)
	}
	return k
}

func (f *fixture) ringOf(names ...string) *KeyRing {
	f.t.Helper()
	var files []string
	for _, n := range names {
		files = append(files, filepath.Join(f.keys, n+".key"))
	}
	r, err := LoadKeyRing(files, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fixture) init() {
	f.t.Helper()
	res, err := Init(f.tree, f.ring, f.roles, f.opt)
	if err != nil || len(res.Needs) > 0 {
		f.t.Fatalf("init: %v %+v", err, res)
	}
}

func (f *fixture) write(path, content string) {
	f.t.Helper()
	p := filepath.Join(f.tree, filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) publish() *PublishResult {
	f.t.Helper()
	res, err := Publish(context.Background(), f.tree, f.ring, f.opt)
	if err != nil {
		f.t.Fatalf("publish: %v", err)
	}
	return res
}

// client is go-tuf's own updater against the tree served on 127.0.0.1,
// trusting only 1.root.json: the oracle.
func (f *fixture) client() *updater.Updater {
	f.t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(f.tree)))
	f.t.Cleanup(srv.Close)
	root, err := os.ReadFile(filepath.Join(f.tree, "-", "tuf", "1.root.json"))
	if err != nil {
		f.t.Fatal(err)
	}
	cfg, err := config.New(srv.URL+"/-/tuf/", root)
	if err != nil {
		f.t.Fatal(err)
	}
	cfg.RemoteTargetsURL = srv.URL + "/"
	cfg.PrefixTargetsWithHash = false
	cfg.LocalMetadataDir = filepath.Join(f.t.TempDir(), "meta")
	cfg.LocalTargetsDir = filepath.Join(f.t.TempDir(), "targets")
	u, err := updater.New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	u.UnsafeSetRefTime(f.now)
	if err := u.Refresh(); err != nil {
		f.t.Fatalf("go-tuf refresh: %v", err)
	}
	return u
}

// verifyTarget checks that go-tuf finds path with content.
func (f *fixture) verifyTarget(u *updater.Updater, path, content string) {
	f.t.Helper()
	tf, err := u.GetTargetInfo(path)
	if err != nil {
		f.t.Fatalf("go-tuf: %s: %v", path, err)
	}
	_, b, err := u.DownloadTarget(tf, filepath.Join(f.t.TempDir(), "x"), "")
	if err != nil {
		f.t.Fatalf("go-tuf download %s: %v", path, err)
	}
	if string(b) != content {
		f.t.Fatalf("%s: got %q, want %q", path, b, content)
	}
}

// files is name → modification time of every file under TREE/-/tuf.
func (f *fixture) files() map[string]time.Time {
	f.t.Helper()
	ents, err := os.ReadDir(filepath.Join(f.tree, "-", "tuf"))
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]time.Time{}
	for _, e := range ents {
		if e.Name() == ".lock" {
			continue
		}
		st, err := e.Info()
		if err != nil {
			f.t.Fatal(err)
		}
		out[e.Name()] = st.ModTime()
	}
	return out
}
