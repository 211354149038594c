package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runMain is realMain with no environment: its stdout, stderr and error.
func runMain(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := realMain(context.Background(), args, &stdout, &stderr, envOf(nil))
	return stdout.String(), stderr.String(), err
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Every command answers a misspelt flag with the nearest one and a
// pointer to its --help, with exit status 2.
func TestTypoedFlagSuggestsTheNearest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string // the flag suggested
		help string // the command whose --help is named
	}{
		{[]string{"serve", "--mirror-workrs", "3"}, "--mirror-workers", "relayd serve"},
		{[]string{"serve", "--cachemax=1GiB"}, "--cache-max", "relayd serve"},
		{[]string{"keygen", "--gosip"}, "--gossip", "relayd keygen"},
		{[]string{"certs", "--hosts", "a"}, "--host", "relayd certs"},
		{[]string{"publish", "x", "--kyes", "k"}, "--keys", "relayd publish"},
		{[]string{"sync", "--folow"}, "--follow", "relayd sync"},
		{[]string{"members", "--jsn"}, "--json", "relayd members"},
		{[]string{"status", "--admn", "x"}, "--admin", "relayd status"},
		{[]string{"tree", "--Json"}, "--json", "relayd tree"},
		{[]string{"cache", "ls", "--prefx", "a"}, "--prefix", "relayd cache ls"},
		{[]string{"fetch", "--rely", "http://x"}, "--relay", "relayd fetch"},
		{[]string{"fetch", "a.txt", "--rot", "k"}, "--root", "relayd fetch"},
		{[]string{"agent", "sync", "--inclde", "a/**"}, "--include", "relayd agent sync"},
		{[]string{"agent", "watch", "--ids", "x"}, "--id", "relayd agent watch"},
		{[]string{"loadgen", "--agent", "3"}, "--agents", "relayd loadgen"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			_, _, err := runMain(t, tc.args...)
			if err == nil {
				t.Fatal("err = nil, want a usage error")
			}
			if code := exitCode(err); code != 2 {
				t.Errorf("exit status %d, want 2", code)
			}
			msg := err.Error()
			if !strings.Contains(msg, "(did you mean "+tc.want+"?)") {
				t.Errorf("%q does not suggest %s", msg, tc.want)
			}
			if !strings.Contains(msg, `see "`+tc.help+` --help"`) {
				t.Errorf("%q does not point to %s --help", msg, tc.help)
			}
			if strings.Contains(msg, "flag provided but not defined") {
				t.Errorf("%q is Go's bare message", msg)
			}
		})
	}
}

func TestFarOffFlagSuggestsNothing(t *testing.T) {
	t.Parallel()
	_, _, err := runMain(t, "status", "--frobnicate")
	if err == nil || exitCode(err) != 2 {
		t.Fatalf("err = %v, want a usage error", err)
	}
	if strings.Contains(err.Error(), "did you mean") || !strings.Contains(err.Error(), "unknown flag --frobnicate") {
		t.Errorf("%q: want no suggestion for a flag far from every one", err)
	}
}

func TestBadFlagValueNamesTheFlag(t *testing.T) {
	t.Parallel()
	_, _, err := runMain(t, "fetch", "--workers", "many", "a")
	if err == nil || exitCode(err) != 2 {
		t.Fatalf("err = %v, want a usage error", err)
	}
	if !strings.Contains(err.Error(), `"many" for flag --workers`) || !strings.Contains(err.Error(), `see "relayd fetch --help"`) {
		t.Errorf("%q: want the flag and --help named", err)
	}
}

func TestUnknownCommandSuggestsTheNearest(t *testing.T) {
	t.Parallel()
	for cmd, want := range map[string]string{"statsu": "status", "fecth": "fetch", "serv": "serve", "loadgne": "loadgen"} {
		_, _, err := runMain(t, cmd)
		if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), `(did you mean "relayd `+want+`"?)`) {
			t.Errorf("relayd %s: err = %v, want a usage error suggesting %s", cmd, err, want)
		}
	}
	if _, _, err := runMain(t, "cache", "stat"); err == nil || exitCode(err) != 2 ||
		!strings.Contains(err.Error(), `(did you mean "relayd cache stats"?); see "relayd cache --help"`) {
		t.Errorf("relayd cache stat: err = %v, want a usage error suggesting cache stats", err)
	}
	if _, _, err := runMain(t, "zzzzzz"); err == nil || strings.Contains(err.Error(), "did you mean") {
		t.Errorf("relayd zzzzzz: err = %v, want no suggestion", err)
	}
}

// helpFlag matches one flag of a --help listing: the flag on its line,
// its usage indented below, ending with its default.
var helpFlag = regexp.MustCompile(`(?m)^  --([a-z-]+)( FILE)?\n        .*\((env RELAYD_[A-Z_]+, )?default ".*"\)$`)

// --help prints the flags to stderr in serve --help's format, with exit
// status 0, for every command.
func TestHelpHasOneFormat(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"serve", "--help"}, {"fetch", "--help"}, {"fetch", "-h"}, {"agent", "sync", "--help"}, {"agent", "watch", "--help"},
		{"keygen", "--help"}, {"certs", "--help"}, {"publish", "--help"}, {"sync", "--help"}, {"members", "--help"},
		{"status", "--help"}, {"tree", "--help"}, {"cache", "ls", "--help"}, {"loadgen", "--help"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			_, stderr, err := runMain(t, args...)
			if !errors.Is(err, flag.ErrHelp) || exitCode(err) != 0 {
				t.Fatalf("err = %v (exit %d), want flag.ErrHelp and exit status 0", err, exitCode(err))
			}
			if want := "Usage: relayd " + args[0]; !strings.HasPrefix(stderr, want) {
				t.Errorf("help starts %q, want %q", firstLine(stderr), want)
			}
			flags := helpFlag.FindAllString(stderr, -1)
			if len(flags) == 0 {
				t.Fatalf("no flag in serve's format in:\n%s", stderr)
			}
			if goListing.MatchString(stderr) {
				t.Errorf("Go's default flag listing:\n%s", stderr)
			}
			var buf bytes.Buffer
			printError(&buf, err)
			if buf.Len() != 0 {
				t.Errorf("help printed an error: %q", buf.String())
			}
		})
	}
}

// goListing matches a flag in Go's default format ("  -name type").
var goListing = regexp.MustCompile(`(?m)^  -[a-z]`)

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// Usage errors exit with 2 and failures at run time with 1, in every
// command.
func TestExitStatusPerCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if _, _, err := runMain(t, "keygen", "--role", "targets", "--out", keys); err != nil {
		t.Fatal(err)
	}
	root := writeTestRoot(t, dir)
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	admin, relay := closedAddr(t), "http://"+closedAddr(t)
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"serve usage", []string{"serve", "extra"}, 2},
		{"serve bad config", []string{"serve", "--mode", "proxy", "--upstream", "x"}, 2},
		{"serve runtime", []string{"serve", "--mode", "origin", "--root", dir, "--listen", busy.Addr().String(), "--admin=", "--gossip="}, 1},
		{"keygen usage", []string{"keygen"}, 2},
		{"keygen without a kind", []string{"keygen", "--out", keys}, 2},
		{"keygen runtime", []string{"keygen", "--role", "targets", "--out", keys}, 1}, // refuses to overwrite
		{"certs usage", []string{"certs", "--out", dir}, 2},
		{"certs runtime", []string{"certs", "--out", notDir, "--host", "127.0.0.1", "n1"}, 1},
		{"publish usage", []string{"publish", dir}, 2},
		{"publish runtime", []string{"publish", dir, "--key", filepath.Join(dir, "nope.key")}, 1},
		{"sync usage", []string{"sync", "extra"}, 2},
		{"sync runtime", []string{"sync", "--admin", admin}, 1},
		{"members usage", []string{"members", "extra"}, 2},
		{"members runtime", []string{"members", "--admin", admin}, 1},
		{"status usage", []string{"status", "extra"}, 2},
		{"status runtime", []string{"status", "--admin", admin}, 1},
		{"tree usage", []string{"tree", "extra"}, 2},
		{"tree runtime", []string{"tree", "--admin", admin}, 1},
		{"cache usage", []string{"cache"}, 2},
		{"cache unknown", []string{"cache", "lss"}, 2},
		{"cache unknown flag", []string{"cache", "--prefix", "a"}, 2},
		{"cache runtime", []string{"cache", "stats", "--admin", admin}, 1},
		{"rollout usage", []string{"rollout"}, 2},
		{"rollout unknown", []string{"rollout", "promot"}, 2},
		{"rollout extra", []string{"rollout", "resume", "now"}, 2},
		{"rollout runtime", []string{"rollout", "status", "--admin", admin}, 1},
		{"fetch usage", []string{"fetch", "--relay", relay, "--root", root, "--out", dir}, 2},
		{"fetch runtime", []string{"fetch", "--relay", relay, "--root", root, "--out", dir, "--retry-budget", "1ms", "--quiet", "a.txt"}, 1},
		{"agent usage", []string{"agent", "sync", "--relay", relay, "--root", root}, 2},
		{"agent unknown", []string{"agent", "run"}, 2},
		{"agent pubkey", []string{"agent", "sync", "--relay", relay, "--pubkey", root, "--out", dir}, 2},
		{"agent runtime", []string{"agent", "sync", "--relay", relay, "--root", root, "--out", dir, "--retry-budget", "1ms", "--quiet"}, 1},
		{"loadgen usage", []string{"loadgen", "--relay", relay, "--root", root, "--agents", "0"}, 2},
		{"loadgen runtime", []string{"loadgen", "--relay", relay, "--root", root, "--agents", "1", "--duration", "300ms"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := runMain(t, tc.args...)
			if err == nil {
				t.Fatalf("relayd %s succeeded, want exit status %d", strings.Join(tc.args, " "), tc.want)
			}
			if got := exitCode(err); got != tc.want {
				t.Errorf("relayd %s: exit status %d (%v), want %d", strings.Join(tc.args, " "), got, err, tc.want)
			}
		})
	}
}

// serve refuses counts and durations that mean nothing, naming the key,
// whether from a flag, the environment or the file.
func TestServeRefusesSenselessCounts(t *testing.T) {
	t.Parallel()
	base := []string{"serve", "--mode", "proxy", "--upstream", "http://127.0.0.1:1", "--data-dir", t.TempDir(), "--admin=", "--gossip="}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"mirror-workers flag", []string{"--mirror-workers", "-3"}, nil, "mirror-workers -3: want at least 1"},
		{"mirror-workers file", []string{"--config", writeConfig(t, "mirror-workers: -3\n")}, nil, "mirror-workers -3: want at least 1"},
		{"mirror-workers zero", []string{"--mirror-workers=0"}, nil, "mirror-workers 0: want at least 1"},
		{"max-fills env", nil, map[string]string{"RELAYD_MAX_FILLS": "0"}, "max-fills 0: want at least 1"},
		{"max-hops", []string{"--max-hops", "-1"}, nil, "max-hops -1"},
		{"mirror-interval", []string{"--mirror-interval", "0s"}, nil, "mirror-interval 0s: want more than 0"},
		{"report-interval", []string{"--report-interval", "-5s"}, nil, "report-interval -5s: want more than 0"},
		{"connect timeout", []string{"--upstream-connect-timeout", "0s"}, nil, "upstream-connect-timeout 0s"},
		{"stall timeout", []string{"--upstream-stall-timeout", "-1s"}, nil, "upstream-stall-timeout -1s"},
		{"drain-timeout", []string{"--drain-timeout", "-1s"}, nil, "drain-timeout -1s: want 0 or more"},
		{"negative-ttl", []string{"--negative-ttl", "-1m"}, nil, "negative-ttl -1m0s"},
		{"default-ttl", []string{"--default-ttl", "-1h"}, nil, "default-ttl -1h0m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := realMain(context.Background(), append(append([]string{}, base...), tc.args...), &stdout, &stderr, envOf(tc.env))
			if err == nil || exitCode(err) != 2 {
				t.Fatalf("err = %v, want a usage error", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to say %q", err, tc.want)
			}
		})
	}
}

// A configuration's mistakes are named by their keys, each on its own
// line, with no chain of package names.
func TestServeErrorsNameKeysNotPackages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, _, err := runMain(t, "serve", "--mode", "proxy", "--upstream", "x", "--fallback", "ftp://y", "--data-dir", dir,
		"--admin=", "--gossip=", "--mirror-include", "[", "--root", filepath.Join(dir, "missing.json"),
		"--tree-key-file", filepath.Join(dir, "missing.key"), "--upstream-proxy", "::x", "--listen", "20080")
	if err == nil || exitCode(err) != 2 {
		t.Fatalf("err = %v, want a usage error", err)
	}
	var out bytes.Buffer
	printError(&out, err)
	for _, want := range []string{
		`relayd: upstream "x": not a base URL: want http(s)://host[:port][/path]`,
		`relayd: fallback "ftp://y": not a base URL`,
		`relayd: mirror-include: pattern "[": syntax error in pattern`,
		`relayd: root "` + filepath.Join(dir, "missing.json") + `": no such file`,
		`relayd: tree-key-file "` + filepath.Join(dir, "missing.key") + `": no such file`,
		`relayd: upstream-proxy "::x": not a proxy URL`,
		`relayd: listen "20080": missing port in address`,
	} {
		if !strings.Contains(out.String(), want+"") {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	for _, pkg := range []string{"config:", "hierarchy:", "cleanpath:", "glob:", "catalog:", "tlsconf:", "address 20080"} {
		if strings.Contains(out.String(), pkg) {
			t.Errorf("output names %q:\n%s", pkg, out.String())
		}
	}
	_, _, err = runMain(t, "fetch", "--relay", "x", "--root", "r.json", "--out", dir, "a")
	if err == nil || !strings.Contains(err.Error(), `--relay "x": not a base URL`) || strings.Contains(err.Error(), "cleanpath") {
		t.Errorf("fetch --relay x: err = %v, want the flag named and no package", err)
	}
}

func TestConfigFileKeySuggestion(t *testing.T) {
	t.Parallel()
	_, _, err := load([]string{"--config", writeConfig(t, "mirror-worker: 3\n")}, nil)
	if err == nil || !strings.Contains(err.Error(), `unknown key "mirror-worker" (did you mean "mirror-workers"?)`) {
		t.Fatalf("err = %v, want the nearest key suggested", err)
	}
}

func TestUnknownEnvWarned(t *testing.T) {
	t.Parallel()
	warns := unknownEnv([]string{
		"PATH=/bin", "RELAYD_CACHE_MAX=1GiB", "RELAYD_CACHEMAX=1GiB", "RELAYD_MIRROR_WORKER=3", "RELAYD_RELAY=http://x",
		"RELAYD_ADMIN_URL=x", "RELAYD_BIN=bin/relayd", "RELAYD_ZZZZZZZZ=1", "RELAYD_CONFIG=/etc/relayd.yaml",
	})
	want := []string{
		"warning: environment variable RELAYD_CACHEMAX is not a relayd setting and is ignored (did you mean RELAYD_CACHE_MAX?)",
		"warning: environment variable RELAYD_MIRROR_WORKER is not a relayd setting and is ignored (did you mean RELAYD_MIRROR_WORKERS?)",
		"warning: environment variable RELAYD_ZZZZZZZZ is not a relayd setting and is ignored",
	}
	if strings.Join(warns, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warns, "\n"), strings.Join(want, "\n"))
	}
}

// Every variable a command reads is known, so none is warned about.
func TestEveryReadEnvIsKnown(t *testing.T) {
	t.Parallel()
	var read []string
	env := func(k string) (string, bool) {
		read = append(read, k+"=")
		return "", false
	}
	var stdout, stderr bytes.Buffer
	for _, args := range [][]string{{"serve", "--help"}, {"fetch", "--help"}, {"agent", "watch", "--help"}, {"status", "--help"}, {"loadgen", "--help"}} {
		_ = realMain(context.Background(), args, &stdout, &stderr, env)
	}
	if len(read) == 0 {
		t.Fatal("no variable read")
	}
	if w := unknownEnv(read); len(w) > 0 {
		t.Errorf("variables read but warned about: %q", w)
	}
}

func TestNearest(t *testing.T) {
	t.Parallel()
	names := []string{"cache-max", "mirror-workers", "max-hops", "json", "admin"}
	for in, want := range map[string]string{
		"cache-mx": "cache-max", "cachemax": "cache-max", "mirror-worker": "mirror-workers", "jsn": "json",
		"JSON": "json", "max-hop": "max-hops", "amdin": "admin", "x": "", "zzzzzzzz": "", "": "",
	} {
		if got := nearest(in, names); got != want {
			t.Errorf("nearest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPrintErrorOneLinePerProblem(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	printError(&out, usageError{errors.Join(errors.New("a is wrong"), errors.New("b is wrong"))})
	if out.String() != "relayd: a is wrong\nrelayd: b is wrong\n" {
		t.Errorf("printed %q", out.String())
	}
}

func TestPublishRateOnlyWhenItMeansSomething(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		bytes int64
		d     string
		want  string
	}{
		{20, "150µs", "under 1ms"},
		{20, "2s", "2s"},
		{1 << 30, "50ms", "50ms"},
		{1 << 30, "500ms", "500ms (2 GiB/s)"},
	} {
		d, err := time.ParseDuration(tc.d)
		if err != nil {
			t.Fatal(err)
		}
		if got := took(tc.bytes, d); got != tc.want {
			t.Errorf("took(%d, %s) = %q, want %q", tc.bytes, tc.d, got, tc.want)
		}
	}
}
