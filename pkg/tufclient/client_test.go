package tufclient

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/internal/testlog"
	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/clock"
)

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

// fixture is a repository with two team delegations and a rest role in
// 16 hashed bins, and a client that trusts its first root.
type fixture struct {
	repo *repo
	srv  *server
	clk  *clock.Fake
	dir  string
	c    *Client
	want map[string]catalog.Object
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{repo: newRepo(t, t0), clk: clock.NewFake(t0), dir: filepath.Join(t.TempDir(), "tuf"), want: map[string]catalog.Object{}}
	r := f.repo
	r.delegate("targets", "security", true, "security/*", "security/*/*")
	r.delegate("targets", "software", true, "software/*/*/*")
	r.delegate("targets", "rest", false, "*", "*/*", "*/*/*", "*/*/*/*")
	r.bins("rest", "rest-bin", 4)
	f.addObj("security", "security/2026/CVE-1.rpm", "patch one")
	f.addObj("security", "security/rules.txt", "rules")
	f.addObj("software", "software/linux-amd64/1.2.3/app.tar.gz", "app")
	for _, p := range []string{"debian/pool/a.deb", "docs/readme.txt", "x", "a/b/c/d"} {
		f.addObj(r.binOf("rest", p), p, "body of "+p)
	}
	r.publish()
	f.srv = r.serve()
	f.c = f.client(t)
	return f
}

func (f *fixture) addObj(role, path, body string) {
	f.want[path] = f.repo.add(role, path, body)
}

func (f *fixture) client(t *testing.T) *Client {
	t.Helper()
	c, err := New(f.repo.files["1.root.json"], Options{Dir: f.dir, Now: f.clk.Now, Log: zerolog.New(testlog.New(t))})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fixture) update(t *testing.T) *State {
	t.Helper()
	st, err := f.c.Update(context.Background(), f.srv)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	return st
}

func checkCatalog(t *testing.T, cat *catalog.Catalog, want map[string]catalog.Object) {
	t.Helper()
	if len(cat.Objects) != len(want) {
		t.Errorf("catalog has %d objects, want %d: %v", len(cat.Objects), len(want), cat.Objects)
	}
	for p, w := range want {
		got, ok := cat.Lookup(p)
		if !ok || got != w {
			t.Errorf("Lookup(%q) = %+v, %v; want %+v", p, got, ok, w)
		}
	}
}

func TestUpdateHappyPath(t *testing.T) {
	f := newFixture(t)
	if f.c.Current() != nil {
		t.Fatal("Current before the first update is not nil")
	}
	st := f.update(t)
	checkCatalog(t, st.Catalog, f.want)
	if st.Catalog.Generation != 1 || st.TimestampVersion != 1 || st.RootVersion != 1 {
		t.Errorf("generation %d, timestamp %d, root %d; want 1, 1, 1", st.Catalog.Generation, st.TimestampVersion, st.RootVersion)
	}
	if want := t0.Add(24 * time.Hour); !st.Expires.Equal(want) || st.ExpiresRole != "timestamp" {
		t.Errorf("expires %v (%s), want %v (timestamp)", st.Expires, st.ExpiresRole, want)
	}
	if f.c.Current() != st {
		t.Error("Current is not the state Update returned")
	}
	// Every file is served and stored as published.
	for name, b := range f.repo.files {
		got, ok := f.c.File(name)
		if !ok || string(got) != string(b) {
			t.Errorf("File(%q): %v", name, ok)
		}
		if disk, err := os.ReadFile(filepath.Join(f.dir, name)); err != nil || string(disk) != string(b) {
			t.Errorf("stored %s: %v", name, err)
		}
	}
	for _, bad := range []string{"../x.json", "root.json", "1.root.json/", "snapshot.json", "1.Targets.json"} {
		if _, ok := f.c.File(bad); ok {
			t.Errorf("File(%q) served", bad)
		}
	}
	if fi, err := os.Stat(f.dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode: %v %v", fi.Mode(), err)
	}
}

func TestNoChangeIsOneRequest(t *testing.T) {
	f := newFixture(t)
	f.update(t)
	f.srv.requests()
	f.clk.Advance(time.Hour)
	st := f.update(t)
	if reqs := f.srv.requests(); !slices.Equal(reqs, []string{"timestamp.json"}) {
		t.Errorf("no-change sync asked for %v, want only timestamp.json", reqs)
	}
	if !st.Verified.Equal(t0.Add(time.Hour)) {
		t.Errorf("verified %v, want now", st.Verified)
	}
	checkCatalog(t, st.Catalog, f.want)
}

func TestResignedTimestampIsOneRequest(t *testing.T) {
	f := newFixture(t)
	first := f.update(t)
	f.srv.requests()
	f.clk.Advance(20 * time.Hour)
	f.repo.resign(f.clk.Now())
	f.srv.sync(f.repo)
	st := f.update(t)
	if reqs := f.srv.requests(); !slices.Equal(reqs, []string{"timestamp.json"}) {
		t.Errorf("re-signed timestamp: asked for %v, want only timestamp.json", reqs)
	}
	if st.TimestampVersion != 2 || st.Catalog != first.Catalog || string(st.Timestamp) != string(f.repo.files["timestamp.json"]) {
		t.Errorf("timestamp %d, same catalog %v", st.TimestampVersion, st.Catalog == first.Catalog)
	}
	// The day-old timestamp would have expired; the re-signed one has not.
	f.clk.Advance(10 * time.Hour)
	f.update(t)
}

func TestNewGenerationFetchesOnlyWhatChanged(t *testing.T) {
	f := newFixture(t)
	f.update(t)
	f.srv.requests()
	// A new object and a changed one, in the same bin; the other roles
	// and their objects are kept as they are.
	bin := f.repo.binOf("rest", "debian/pool/a.deb")
	f.addObj(bin, "debian/pool/a.deb", "changed")
	newPath := ""
	for i := 0; newPath == ""; i++ {
		if p := fmt.Sprintf("new/object-%d", i); f.repo.binOf("rest", p) == bin {
			newPath = p
		}
	}
	f.addObj(bin, newPath, "new")
	f.repo.publish()
	f.srv.sync(f.repo)
	st := f.update(t)
	want := []string{"timestamp.json", "2.root.json", "2.snapshot.json", "2." + bin + ".json"}
	if reqs := f.srv.requests(); !slices.Equal(reqs, want) {
		t.Errorf("asked for %v, want %v", reqs, want)
	}
	if st.Catalog.Generation != 2 {
		t.Errorf("generation %d", st.Catalog.Generation)
	}
	checkCatalog(t, st.Catalog, f.want)
}

func TestRestartNeedsNoNetwork(t *testing.T) {
	f := newFixture(t)
	st := f.update(t)
	// A week later the metadata has expired; it still is what was trusted.
	f.clk.Advance(7 * 24 * time.Hour)
	c := f.client(t)
	got := c.Current()
	if got == nil {
		t.Fatal("no state after restart")
	}
	if got.Catalog.Generation != st.Catalog.Generation || got.TimestampVersion != st.TimestampVersion || !got.Expires.Equal(st.Expires) {
		t.Errorf("restart: %+v, want %+v", got, st)
	}
	checkCatalog(t, got.Catalog, f.want)
	if b, ok := c.File("1.snapshot.json"); !ok || string(b) != string(f.repo.files["1.snapshot.json"]) {
		t.Error("restarted client does not serve 1.snapshot.json")
	}
}

func TestPruneKeepsThreeGenerations(t *testing.T) {
	f := newFixture(t)
	f.update(t)
	for i := range 4 {
		f.addObj("security", "security/new-"+string(rune('a'+i)), "x")
		f.repo.publish()
		f.srv.sync(f.repo)
		f.update(t)
	}
	// Generations 3, 4 and 5 stay; security changed in each.
	for name, gone := range map[string]bool{
		"1.snapshot.json": true, "2.snapshot.json": true, "3.snapshot.json": false, "5.snapshot.json": false,
		"1.security.json": true, "2.security.json": true, "3.security.json": false, "5.security.json": false,
		"1.rest-bin-0.json": false, "1.root.json": false, "1.targets.json": false,
	} {
		_, err := os.Stat(filepath.Join(f.dir, name))
		if gone != os.IsNotExist(err) {
			t.Errorf("%s: gone %v, want %v (%v)", name, !gone, gone, err)
		}
	}
	if _, ok := f.c.File("3.snapshot.json"); !ok {
		t.Error("File does not serve a kept older generation")
	}
}
