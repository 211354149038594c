package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/relayd/relayd/internal/proctest"
)

// relaydBin is the binary built once by TestMain; chromium the browser
// found ("" none: the tests skip).
var relaydBin, chromium string

func TestMain(m *testing.M) {
	chromium = findChromium()
	dir, err := os.MkdirTemp("", "relayd-ui-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "ui:", err)
		os.Exit(1)
	}
	if chromium != "" {
		relaydBin, err = proctest.Build(dir, "github.com/relayd/relayd/cmd/relayd")
		if err != nil {
			fmt.Fprintln(os.Stderr, "ui:", err)
			_ = os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// findChromium returns RELAYD_CHROMIUM, or the first Chromium on PATH.
func findChromium() string {
	if p := os.Getenv("RELAYD_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser starts a headless Chromium for the test and returns a tab's
// context; the browser is killed when the test ends.
func browser(t *testing.T) context.Context {
	t.Helper()
	if chromium == "" {
		t.Skip("no Chromium binary (chromium, chromium-browser, google-chrome on PATH, or RELAYD_CHROMIUM): " +
			"install Debian's chromium (.ci/run does) to run the dashboard's browser tests")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1100),
		chromedp.NoSandbox, // root in CI containers; the page is our own
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first run starts the browser: no timeout on it (it would end
	// the browser), the test's own bound holds.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	// What the page cannot do (a script error, a CSP refusal) fails the
	// test.
	console := chromedp.Console(ctx)
	var mu sync.Mutex
	var bad []string
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleException || strings.Contains(m.Text, "Content Security Policy") {
				mu.Lock()
				bad = append(bad, string(m.Type)+": "+m.Text)
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range bad {
			t.Errorf("the page's console: %s", m)
		}
	})
	return ctx
}

// run runs chromedp steps with a bound in time.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](ctx context.Context, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// text is the text of the element with the id.
func text(ctx context.Context, id string) (string, error) {
	return eval[string](ctx, "document.getElementById("+strconv.Quote(id)+").textContent")
}

// getJSON GETs an admin URL into out.
func getJSON(url, token string, out any) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

// relayd runs a relayd command to completion.
func relayd(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := proctest.Run(t, 60*time.Second, append([]string{relaydBin}, args...)...)
	if err != nil {
		t.Fatalf("relayd %v: %v\n%s%s", args, err, out, stderr)
	}
	return out
}

// publishedTree makes a TUF repository of a small tree, published at
// generation 1: the tree, the keys directory and the trusted root.
func publishedTree(t *testing.T, extraRoles ...string) (tree, keys, root string) {
	t.Helper()
	tree, keys = t.TempDir(), filepath.Join(t.TempDir(), "keys")
	if err := os.MkdirAll(filepath.Join(tree, "pool"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"a.deb", "b.deb"} {
		if err := os.WriteFile(filepath.Join(tree, "pool", name), []byte(fmt.Sprintf("package %d\n", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, role := range append([]string{"root", "targets", "snapshot", "timestamp"}, extraRoles...) {
		relayd(t, "keygen", "--role", role, "--out", keys)
	}
	relayd(t, "tuf", "init", tree, "--keys", keys)
	relayd(t, "publish", tree, "--keys", keys)
	return tree, keys, filepath.Join(tree, "-", "tuf", "1.root.json")
}

// treeKey makes the tree credential every relay of a test tree holds.
func treeKey(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tk")
	relayd(t, "keygen", "--tree", "--out", dir)
	return filepath.Join(dir, "tree.key")
}

// start starts a relayd and waits for it to serve.
func start(t *testing.T, args ...string) *proctest.Proc {
	t.Helper()
	return proctest.StartRelayd(t, relaydBin, args...)
}

// startOrigin starts an origin serving tree with its admin port on
// loopback and args, and returns it with its admin base URL.
func startOrigin(t *testing.T, tree string, args ...string) (*proctest.Proc, string) {
	t.Helper()
	p := start(t, append([]string{"--mode", "origin", "--root", tree, "--node", "origin", "--admin", "127.0.0.1:0"}, args...)...)
	return p, "http://" + p.WaitLogAddr(t, "admin listening")
}

// startAgent starts `relayd agent watch` of group at relay.
func startAgent(t *testing.T, relay, root, group, id string) {
	t.Helper()
	proctest.Start(t, "agent", []string{relaydBin, "agent", "watch", "--relay", relay, "--root", root, "--out", t.TempDir(),
		"--group", group, "--id", id, "--sync-jitter", "0", "--quiet"}, nil, "")
}
