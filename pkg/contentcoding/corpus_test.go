package contentcoding_test

// The real data the tests and benchmarks use: two consecutive builds of
// relayd's own binary, two versions of relayd's source as a tar (a
// text-heavy bundle), a text rule set (the freedesktop MIME database), and
// already-compressed archives (two versions of the golang.org/x/sync
// module zip from the module cache). What is not on the
// machine is skipped, saying why.

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// buildPair is two consecutive commits whose builds differ by a small code
// change (proxycache: 3 lines), the "next build" of the issue;
// RELAYD_DELTA_COMMITS="old new" picks others (e.g. "c681af2^1 c681af2",
// a merge of 2,215 changed lines).
var buildPair = [2]string{"1a3492b", "236cf34"}

var corpusMu sync.Mutex

// corpusDir keeps what was built across runs (builds take a minute).
func corpusDir(tb testing.TB) string {
	dir := filepath.Join(os.TempDir(), "relayd-contentcoding-corpus")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	return dir
}

func repoRoot(tb testing.TB) string {
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		tb.Skipf("no git checkout: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func commits(tb testing.TB, root string) [2]string {
	pair := buildPair
	if v := strings.Fields(os.Getenv("RELAYD_DELTA_COMMITS")); len(v) == 2 {
		pair = [2]string{v[0], v[1]}
	}
	var out [2]string
	for i, c := range pair {
		h, err := exec.Command("git", "-C", root, "rev-parse", "--short=12", c+"^{commit}").Output()
		if err != nil {
			tb.Skipf("commit %s is not in this clone: %v", c, err)
		}
		out[i] = strings.TrimSpace(string(h))
	}
	return out
}

// readFile reads a corpus file, skipping when it is absent.
func readFile(tb testing.TB, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Skipf("corpus file missing: %v", err)
	}
	return b
}

// relaydBuilds returns the two relayd binaries (built once per commit).
func relaydBuilds(tb testing.TB) (old, new []byte) {
	corpusMu.Lock()
	defer corpusMu.Unlock()
	root := repoRoot(tb)
	var bins [2][]byte
	for i, c := range commits(tb, root) {
		bin := filepath.Join(corpusDir(tb), "relayd-"+c)
		if _, err := os.Stat(bin); err != nil {
			src := tb.TempDir()
			sh := "git -C " + root + " archive " + c + " | tar -x -C " + src
			if out, err := exec.Command("sh", "-c", sh).CombinedOutput(); err != nil {
				tb.Fatalf("%s: %v\n%s", sh, err, out)
			}
			cmd := exec.Command("go", "build", "-trimpath", "-o", bin+".tmp", "./cmd/relayd")
			cmd.Dir = src
			cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false", "GOPROXY=off", "GOOS="+runtime.GOOS)
			if out, err := cmd.CombinedOutput(); err != nil {
				tb.Skipf("build relayd at %s: %v\n%s", c, err, out)
			}
			if err := os.Rename(bin+".tmp", bin); err != nil {
				tb.Fatal(err)
			}
		}
		bins[i] = readFile(tb, bin)
	}
	return bins[0], bins[1]
}

// sourceTars returns relayd's source at the two commits as plain tars.
func sourceTars(tb testing.TB) (old, new []byte) {
	corpusMu.Lock()
	defer corpusMu.Unlock()
	root := repoRoot(tb)
	var tars [2][]byte
	for i, c := range commits(tb, root) {
		out, err := exec.Command("git", "-C", root, "archive", "--format=tar", c).Output()
		if err != nil {
			tb.Fatalf("git archive %s: %v", c, err)
		}
		tars[i] = out
	}
	return tars[0], tars[1]
}

// ruleSet is a real text rule set: the freedesktop.org MIME database.
func ruleSet(tb testing.TB) []byte {
	return readFile(tb, "/usr/share/mime/packages/freedesktop.org.xml")
}

// archive is an already-compressed archive: a Go module zip (deflate).
// (Go's own zoneinfo.zip is stored uncompressed: not an example.)
func archive(tb testing.TB) []byte {
	_, z := moduleZips(tb)
	return z
}

// gzArchive is a large already-compressed file: Debian's AppStream
// component catalog (gzip), as apt keeps it.
func gzArchive(tb testing.TB) []byte {
	return readFile(tb, "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_dep11_Components-amd64.yml.gz")
}

// moduleZips are two versions of a real module from the module cache.
func moduleZips(tb testing.TB) (old, new []byte) {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		tb.Skipf("go env: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "cache", "download", "golang.org", "x", "sync", "@v")
	return readFile(tb, filepath.Join(dir, "v0.24.0.zip")), readFile(tb, filepath.Join(dir, "v0.25.0.zip"))
}
