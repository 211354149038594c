// Package install tests scripts/install.sh, scripts/relayd.service and the
// example configs in docs/examples against the real relayd binary: the
// installer into a DESTDIR staging root, the unit with systemd-analyze
// verify (when it is installed), and every example with `relayd serve`.
package install

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relayd/relayd/internal/proctest"
)

// repoRoot is the module root (this package lives in test/install).
var repoRoot string

// relaydBin is the binary built once by TestMain.
var relaydBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err == nil {
		_, err = os.Stat(filepath.Join(root, "go.mod"))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "install: cannot find the module root:", err)
		return 1
	}
	repoRoot = root
	dir, err := os.MkdirTemp("", "relayd-install-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "install:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	relaydBin, err = proctest.Build(dir, "github.com/relayd/relayd/cmd/relayd")
	if err != nil {
		fmt.Fprintln(os.Stderr, "install:", err)
		return 1
	}
	return m.Run()
}

// roleExample is the example config each --role installs.
var roleExample = map[string]string{
	"origin": "origin.yaml",
	"mirror": "mirror-hub.yaml",
	"proxy":  "branch-proxy.yaml",
}

// runInstall runs scripts/install.sh with DESTDIR and PREFIX and the given
// arguments, and returns its output.
func runInstall(t *testing.T, destdir, prefix string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{filepath.Join(repoRoot, "scripts", "install.sh")}, args...)...)
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "DESTDIR", "PREFIX", "UNITDIR", "GO":
		default:
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "DESTDIR="+destdir, "PREFIX="+prefix)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// wantMode fails unless path exists with the given type and permissions.
func wantMode(t *testing.T, path string, dir bool, perm os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	if st.IsDir() != dir {
		t.Errorf("%s: is a directory = %v, want %v", path, st.IsDir(), dir)
	}
	if st.Mode().Perm() != perm {
		t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), perm)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestInstallMirror installs the mirror role into a DESTDIR with a
// non-default prefix, checks every file, re-runs the installer over an
// edited config and verifies the unit with systemd-analyze when present.
func TestInstallMirror(t *testing.T) {
	dest := t.TempDir()
	const prefix = "/opt/relayd"
	out, err := runInstall(t, dest, prefix, "--binary", relaydBin, "--role", "mirror")
	if err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	t.Logf("install.sh:\n%s", out)
	if !strings.Contains(out, "user          skipped: DESTDIR is set") {
		t.Errorf("install.sh does not say it skipped the user with DESTDIR set:\n%s", out)
	}

	bin := filepath.Join(dest, prefix, "bin", "relayd")
	wantMode(t, bin, false, 0o755)
	if !bytes.Equal(readFile(t, bin), readFile(t, relaydBin)) {
		t.Errorf("%s differs from the --binary given", bin)
	}

	wantMode(t, filepath.Join(dest, "etc", "relayd"), true, 0o750)
	config := filepath.Join(dest, "etc", "relayd", "relayd.yaml")
	wantMode(t, config, false, 0o640)
	example := readFile(t, filepath.Join(repoRoot, "docs", "examples", "mirror-hub.yaml"))
	if !bytes.Equal(readFile(t, config), example) {
		t.Errorf("%s is not docs/examples/mirror-hub.yaml", config)
	}
	if _, err := os.Stat(config + ".new"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a first install wrote %s.new (err %v)", config, err)
	}

	wantMode(t, filepath.Join(dest, "var", "lib", "relayd"), true, 0o750)

	unitPath := filepath.Join(dest, "lib", "systemd", "system", "relayd.service")
	wantMode(t, unitPath, false, 0o644)
	unit := string(readFile(t, unitPath))
	lines := map[string]bool{}
	for l := range strings.SplitSeq(unit, "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{
		"ExecStart=" + prefix + "/bin/relayd serve --config /etc/relayd/relayd.yaml",
		"User=relayd",
		"Restart=on-failure",
		"KillSignal=SIGTERM",
		"LimitNOFILE=65536",
		"NoNewPrivileges=yes",
		"ProtectSystem=strict",
		"ProtectHome=yes",
		"PrivateTmp=yes",
		"ReadWritePaths=/var/lib/relayd",
		"AmbientCapabilities=",
		"CapabilityBoundingSet=",
		"SystemCallFilter=@system-service",
		"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
	} {
		if !lines[want] {
			t.Errorf("unit has no line %q", want)
		}
	}
	for l := range lines {
		if !strings.HasPrefix(l, "#") && strings.Contains(l, "/usr/local") {
			t.Errorf("unit line %q names /usr/local after install with PREFIX=%s", l, prefix)
		}
	}
	checkStopTimeout(t, unit)

	// A second run keeps the operator's config and offers the example
	// next to it.
	edited := append(bytes.Clone(example), []byte("# edited by the operator\n")...)
	if err := os.WriteFile(config, edited, 0o640); err != nil {
		t.Fatal(err)
	}
	out, err = runInstall(t, dest, prefix, "--binary", relaydBin, "--role", "mirror")
	if err != nil {
		t.Fatalf("install.sh, second run: %v\n%s", err, out)
	}
	if !bytes.Equal(readFile(t, config), edited) {
		t.Errorf("the second run overwrote the edited %s", config)
	}
	wantMode(t, config+".new", false, 0o640)
	if !bytes.Equal(readFile(t, config+".new"), example) {
		t.Errorf("%s.new is not docs/examples/mirror-hub.yaml", config)
	}
	if !strings.Contains(out, "KEPT") || !strings.Contains(out, "relayd.yaml.new") {
		t.Errorf("the second run does not say it kept the config and wrote relayd.yaml.new:\n%s", out)
	}
	wantMode(t, bin, false, 0o755)

	// A subtest, so that a machine without systemd shows as a skip.
	t.Run("systemd-analyze verify", func(t *testing.T) { verifyUnit(t, dest, prefix, unit) })
}

// checkStopTimeout checks that systemd waits longer than relayd's default
// drain timeout before it kills the service.
func checkStopTimeout(t *testing.T, unit string) {
	t.Helper()
	m := regexp.MustCompile(`(?m)^TimeoutStopSec=(\S+)$`).FindStringSubmatch(unit)
	if m == nil {
		t.Error("unit has no TimeoutStopSec")
		return
	}
	stop, err := time.ParseDuration(m[1])
	if err != nil {
		t.Errorf("TimeoutStopSec=%s: write it as a Go-style duration like 45s (%v)", m[1], err)
		return
	}
	help := serveHelp(t)
	d := regexp.MustCompile(`--drain-timeout\n.*default "([^"]+)"`).FindStringSubmatch(help)
	if d == nil {
		t.Fatalf("relayd serve --help shows no drain-timeout default:\n%s", help)
	}
	drain, err := time.ParseDuration(d[1])
	if err != nil {
		t.Fatal(err)
	}
	if stop <= drain {
		t.Errorf("TimeoutStopSec=%s is not above relayd's drain-timeout default %s: systemd would kill relayd mid-drain", stop, drain)
	}
}

// verifyUnit runs systemd-analyze verify on a copy of the unit whose
// ExecStart points at the binary inside DESTDIR (verify insists that the
// command exists). Any output is a finding: verify reports unknown keys
// and bad values as warnings with exit status 0.
func verifyUnit(t *testing.T, dest, prefix, unit string) {
	t.Helper()
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not on PATH: the unit is not verified by systemd here")
	}
	dir := t.TempDir()
	copyUnit := strings.ReplaceAll(unit, "ExecStart="+prefix+"/", "ExecStart="+filepath.Join(dest, prefix)+"/")
	path := filepath.Join(dir, "relayd.service")
	if err := os.WriteFile(path, []byte(copyUnit), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sa, "verify", "--man=no", path)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify relayd.service: %v\n%s", err, out)
	}
}

// TestInstallRoles checks that each role installs its example, and that a
// bad role is refused.
func TestInstallRoles(t *testing.T) {
	for role, example := range roleExample {
		t.Run(role, func(t *testing.T) {
			t.Parallel()
			dest := t.TempDir()
			out, err := runInstall(t, dest, "/usr/local", "--binary", relaydBin, "--role", role)
			if err != nil {
				t.Fatalf("install.sh --role %s: %v\n%s", role, err, out)
			}
			got := readFile(t, filepath.Join(dest, "etc", "relayd", "relayd.yaml"))
			if !bytes.Equal(got, readFile(t, filepath.Join(repoRoot, "docs", "examples", example))) {
				t.Errorf("--role %s did not install docs/examples/%s", role, example)
			}
			unit := string(readFile(t, filepath.Join(dest, "lib", "systemd", "system", "relayd.service")))
			if !strings.Contains(unit, "\nExecStart=/usr/local/bin/relayd serve --config /etc/relayd/relayd.yaml\n") {
				t.Errorf("unit ExecStart is not the default prefix's:\n%s", unit)
			}
		})
	}
	t.Run("bad role", func(t *testing.T) {
		t.Parallel()
		dest := t.TempDir()
		out, err := runInstall(t, dest, "/usr/local", "--binary", relaydBin, "--role", "cache")
		if err == nil {
			t.Fatalf("install.sh --role cache succeeded:\n%s", out)
		}
		if !strings.Contains(out, "want origin, mirror or proxy") {
			t.Errorf("install.sh --role cache does not say what it wants:\n%s", out)
		}
		if entries, _ := os.ReadDir(dest); len(entries) > 0 {
			t.Errorf("install.sh --role cache wrote into DESTDIR: %v", entries)
		}
	})
}

// serveHelp is `relayd serve --help` (printed on stderr).
func serveHelp(t *testing.T) string {
	t.Helper()
	var b bytes.Buffer
	cmd := exec.Command(relaydBin, "serve", "--help")
	cmd.Stdout, cmd.Stderr = &b, &b
	if err := cmd.Run(); err != nil {
		t.Fatalf("relayd serve --help: %v\n%s", err, b.String())
	}
	return b.String()
}

// serveKeys are the config keys relayd serve accepts today.
func serveKeys(t *testing.T) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  --([a-z0-9-]+)`).FindAllStringSubmatch(serveHelp(t), -1) {
		keys[m[1]] = true
	}
	if len(keys) < 10 {
		t.Fatalf("relayd serve --help lists only %d keys", len(keys))
	}
	return keys
}

var (
	commentedKey = regexp.MustCompile(`^#([a-z][a-z0-9-]*):`)
	activeKey    = regexp.MustCompile(`^([a-z][a-z0-9-]*):`)
	listItem     = regexp.MustCompile(`^#?\s+- `)
)

// TestExampleComments checks the commented-out keys of each example: a
// key relayd does not accept yet must be marked "(coming)" in the comment
// above it, and a key marked "(coming)" that relayd now accepts is a stale
// example. Commented-out keys are written "#key: value", prose "# text".
func TestExampleComments(t *testing.T) {
	keys := serveKeys(t)
	for _, example := range roleExample {
		lines := strings.Split(string(readFile(t, filepath.Join(repoRoot, "docs", "examples", example))), "\n")
		for i, l := range lines {
			m := commentedKey.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			coming := false
			for j := i - 1; j >= 0; j-- {
				p := lines[j]
				if strings.TrimSpace(p) == "" || !strings.HasPrefix(p, "#") || commentedKey.MatchString(p) || listItem.MatchString(p) {
					break
				}
				if strings.Contains(p, "(coming)") {
					coming = true
				}
			}
			switch {
			case !keys[m[1]] && !coming:
				t.Errorf("%s:%d: %q is not a relayd serve key: mark it (coming) or remove it", example, i+1, m[1])
			case keys[m[1]] && coming:
				t.Errorf("%s:%d: %q is marked (coming) but relayd serve accepts it now: document it", example, i+1, m[1])
			}
		}
	}
}

// TestExamplesServe starts `relayd serve --config` with each example, as
// it is and with its optional (commented-out, not "(coming)") keys
// uncommented. The file is read in full (an unknown key or bad value stops
// startup); flags then point what the example sets at temp dirs, loopback
// ports and a closed upstream, and the node must answer /-/healthz and stop
// cleanly on SIGTERM.
func TestExamplesServe(t *testing.T) {
	keys := t.TempDir()
	tree := filepath.Join(keys, "tree")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"keygen", "--role", "root", "--out", keys}, {"keygen", "--role", "targets", "--out", keys},
		{"keygen", "--role", "snapshot", "--out", keys}, {"keygen", "--role", "timestamp", "--out", keys},
		{"keygen", "--role", "rollout", "--out", keys},
		{"tuf", "init", tree, "--keys", keys}, {"keygen", "--gossip", "--out", keys}, {"keygen", "--tree", "--out", keys},
		{"certs", "--out", filepath.Join(keys, "tls"), "--host", "127.0.0.1", "node"}} {
		if out, err := exec.Command(relaydBin, args...).CombinedOutput(); err != nil {
			t.Fatalf("relayd %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	known := serveKeys(t)
	for role, example := range roleExample {
		for _, optional := range []bool{false, true} {
			name := example
			if optional {
				name += "+optional"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				path := filepath.Join(repoRoot, "docs", "examples", example)
				if optional {
					path = filepath.Join(t.TempDir(), example)
					text := uncommentOptional(string(readFile(t, filepath.Join(repoRoot, "docs", "examples", example))), known)
					if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				serveExample(t, exampleArgs(t, role, path, keys))
			})
		}
	}
}

// uncommentOptional uncomments the known keys of an example written
// "#key: value", with the "#  - item" lines of a list that follow.
func uncommentOptional(text string, known map[string]bool) string {
	lines := strings.Split(text, "\n")
	inList := false
	for i, l := range lines {
		if m := commentedKey.FindStringSubmatch(l); m != nil {
			inList = known[m[1]]
			if inList {
				lines[i] = l[1:]
			}
			continue
		}
		if inList && strings.HasPrefix(l, "#") && listItem.MatchString(l) {
			lines[i] = l[1:]
			continue
		}
		inList = false
	}
	return strings.Join(lines, "\n")
}

// exampleArgs are the serve arguments that run the example at path on
// loopback, in temp dirs, with test keys in keys.
func exampleArgs(t *testing.T, role, path, keys string) []string {
	t.Helper()
	active := map[string]bool{}
	for l := range strings.SplitSeq(string(readFile(t, path)), "\n") {
		if m := activeKey.FindStringSubmatch(l); m != nil {
			active[m[1]] = true
		}
	}
	if !active["mode"] {
		t.Fatalf("%s sets no mode", path)
	}
	args := []string{"serve", "--config", path, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--log-format", "json", "--log-level", "info"}
	if role == "origin" {
		args = append(args, "--root", t.TempDir())
	} else {
		args = append(args, "--data-dir", t.TempDir(), "--upstream", "http://127.0.0.1:1",
			"--gossip", "127.0.0.1:0", "--join=", "--advertise=")
		if active["root"] {
			args = append(args, "--root", filepath.Join(keys, "tree", "-", "tuf", "1.root.json"))
		}
	}
	if active["gossip-key-file"] {
		args = append(args, "--gossip-key-file", filepath.Join(keys, "gossip.key"))
	}
	if active["tree-key-file"] {
		args = append(args, "--tree-key-file", filepath.Join(keys, "tree.key"))
	}
	if active["tls-cert"] {
		args = append(args, "--tls-listen", "127.0.0.1:0", "--tls-cert", filepath.Join(keys, "tls", "node.pem"),
			"--tls-key", filepath.Join(keys, "tls", "node.key"))
	}
	for _, k := range []string{"upstream-ca", "peer-ca"} {
		if active[k] {
			args = append(args, "--"+k, filepath.Join(keys, "tls", "ca.pem"))
		}
	}
	if active["rollout-plan"] {
		plan := filepath.Join(t.TempDir(), "rollout.yaml")
		if err := os.WriteFile(plan, []byte("name: example\nrings:\n  - {name: canary, groups: [branch-a], soak: 10m}\n  - {name: broad, groups: [\"*\"]}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--rollout-plan", plan, "--rollout-key", filepath.Join(keys, "rollout.key"), "--data-dir", t.TempDir())
	}
	if active["admin-token-file"] {
		token := filepath.Join(t.TempDir(), "admin.token")
		if err := os.WriteFile(token, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--admin-token-file", token)
	}
	return args
}

// serveExample runs relayd with args until /-/healthz answers, then stops
// it with SIGTERM and wants exit status 0.
func serveExample(t *testing.T, args []string) {
	t.Helper()
	cmd := exec.Command(relaydBin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RELAYD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// Output goes to logs (read only once the process has been waited
	// for) and through a pipe to the scanner that finds the address.
	var logs bytes.Buffer
	pr, pw := io.Pipe()
	w := io.MultiWriter(pw, &logs)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var line struct {
				Message string `json:"message"`
				Addr    string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Message == "content listening" {
				select {
				case addrc <- line.Addr:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	done := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		pw.Close()
		close(done)
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
	})
	cmdline := "relayd " + strings.Join(args, " ")

	var addr string
	select {
	case addr = <-addrc:
	case <-done:
		t.Fatalf("%s exited before listening: %v\n%s", cmdline, waitErr, logs.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("%s did not log \"content listening\" within 15s", cmdline)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/-/healthz")
	if err != nil {
		t.Fatalf("GET /-/healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /-/healthz: %s", resp.Status)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		if waitErr != nil {
			t.Errorf("%s, after SIGTERM: %v\n%s", cmdline, waitErr, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Errorf("%s did not stop within 20s of SIGTERM", cmdline)
	}
}
