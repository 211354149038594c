package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/cleanpath"
)

// nonPortable are catalog paths the agent must not write on any system:
// each names another file, a stream or a device on Windows, or the
// agent's own files on a file system that ignores case (macOS, Windows).
var nonPortable = []string{
	"data:stream",              // NTFS alternate data stream of "data"
	"docs/a:b",                 // the same, deeper
	"docs/nul.txt",             // the null device before Windows 11
	"COM1",                     // a serial port
	"trailing.",                // Windows writes "trailing"
	"dir /x",                   // Windows writes "dir/x"
	"what?",                    // not a name on Windows
	".RELAYD-AGENT/state.json", // the agent's state, on macOS and Windows
	".Relayd-Agent",
	"x/.y.RELAYD-PART-0a1b2c", // looks like a temporary file
}

func TestSyncSkipsNonPortablePaths(t *testing.T) {
	t.Parallel()
	k := newRepo(t)
	files := map[string][]byte{"ok/a.txt": data(3000, 1), "ok/b": data(100, 2), "ok/README": data(70, 3)}
	for i, p := range nonPortable {
		files[p] = data(50, byte(10+i))
	}
	// One file on macOS and Windows: the first in catalog order is
	// written.
	files["ok/ReadMe"] = data(60, 4)
	files["OK/readme"] = data(60, 5)
	r := newRelay(t, k.publish(t, 1, files), files)
	dir := t.TempDir()
	var logs bytes.Buffer
	a, err := New(testConfig(k, dir, r), zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Sync(context.Background())
	if err != nil || res.Downloaded != 3 || res.Failed != 0 {
		t.Fatalf("sync: %+v, %v; want the 3 portable paths downloaded", res, err)
	}
	if gets, _ := r.objectGets(); gets != 3 {
		t.Fatalf("%d object GETs, want 3", gets)
	}
	wantFile(t, dir, "ok/a.txt", files["ok/a.txt"])
	wantFile(t, dir, "ok/b", files["ok/b"])
	wantFile(t, dir, "OK/readme", files["OK/readme"]) // "O" < "o"
	var written []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			// The trusted metadata is the TUF client's business.
			if rel = filepath.ToSlash(rel); !strings.HasPrefix(rel, StateDir+"/"+tufDir+"/") {
				written = append(written, rel)
			}
		}
		return nil
	})
	slices.Sort(written)
	if want := []string{StateDir + "/" + stateFile, "OK/readme", "ok/a.txt", "ok/b"}; !slices.Equal(written, want) {
		t.Fatalf("the directory holds %q, want %q", written, want)
	}
	var st stateDoc
	if b, err := os.ReadFile(filepath.Join(dir, StateDir, stateFile)); err != nil || json.Unmarshal(b, &st) != nil || st.Synced != 1 {
		t.Fatalf("state: %+v, %v; want synced to generation 1", st, err)
	}
	// Said once, with the count.
	if n := strings.Count(logs.String(), "catalog paths not written"); n != 1 || !strings.Contains(logs.String(), `"paths":12`) {
		t.Fatalf("want one warning counting 12 paths, got %d:\n%s", n, logs.String())
	}
}

func TestFetchRefusesNonPortablePaths(t *testing.T) {
	t.Parallel()
	k := newRepo(t)
	files := map[string][]byte{"docs/a.txt": data(3000, 1)}
	for i, p := range nonPortable {
		files[p] = data(50, byte(10+i))
	}
	r := newRelay(t, k.publish(t, 1, files), files)
	dir := t.TempDir()
	a := newAgent(t, testConfig(k, dir, r))
	for _, p := range nonPortable {
		res, err := a.Fetch(context.Background(), p)
		if err == nil || res.Downloaded != 0 {
			t.Errorf("fetch %q: %+v, %v; want it refused", p, res, err)
		}
		if strings.Contains(p, ":") && !errors.Is(err, cleanpath.ErrBadPath) {
			t.Errorf("fetch %q: %v; want cleanpath.ErrBadPath", p, err)
		}
	}
	if gets, _ := r.objectGets(); gets != 0 {
		t.Fatalf("%d object GETs for refused paths", gets)
	}
	// A backslash is a separator, as Windows users type paths.
	res, err := a.Fetch(context.Background(), `docs\a.txt`)
	if err != nil || res.Downloaded != 1 {
		t.Fatalf(`fetch docs\a.txt: %+v, %v; want docs/a.txt downloaded`, res, err)
	}
	wantFile(t, dir, "docs/a.txt", files["docs/a.txt"])
	noParts(t, dir)
}
