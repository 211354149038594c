package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/relayd/relayd/pkg/node"
)

// envOf is a fake environment.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// writeConfig writes a YAML config file and returns its path.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "relayd.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func load(args []string, env map[string]string) (node.Config, logConfig, error) {
	return loadServeConfig(args, envOf(env), io.Discard)
}

// valueOf reads back a key from a loaded configuration in its flag form.
func valueOf(t *testing.T, cfg node.Config, lc logConfig, key string) string {
	t.Helper()
	for _, o := range serveOptions(&cfg, &lc) {
		if o.name == key {
			return o.value.String()
		}
	}
	t.Fatalf("no option %q", key)
	return ""
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	cfg, lc, err := load(nil, nil)
	if err != nil {
		t.Fatalf("no flags, env or file: %v", err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"listen", cfg.Listen, ":20080"},
		{"admin", cfg.Admin, "127.0.0.1:20090"},
		{"mode", cfg.Mode, "proxy"},
		{"group", cfg.Group, ""}, // empty: the node name, set by Validate
		{"data-dir", cfg.DataDir, "/var/lib/relayd"},
		{"log-level", lc.Level, "info"},
		{"log-format", lc.Format, "json"},
	} {
		if c.got != c.want {
			t.Errorf("default %s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if !reflect.DeepEqual(cfg, node.DefaultConfig()) {
		t.Errorf("defaults differ from node.DefaultConfig():\n got %+v\nwant %+v", cfg, node.DefaultConfig())
	}
	if len(cfg.Upstream.Upstreams) != 0 || cfg.CacheMax != 0 {
		t.Errorf("default upstreams %v, cache-max %d; want none and 0", cfg.Upstream.Upstreams, cfg.CacheMax)
	}
}

// samples holds, for every key, a value that is not its default and its
// canonical form as the key's flag prints it.
var samples = map[string]struct{ in, out string }{
	"node":                     {"relay-7", "relay-7"},
	"group":                    {"eu-west", "eu-west"},
	"mode":                     {"origin", "origin"},
	"data-dir":                 {"/srv/relayd", "/srv/relayd"},
	"root":                     {"/srv/www", "/srv/www"},
	"listen":                   {"127.0.0.1:8080", "127.0.0.1:8080"},
	"admin":                    {"127.0.0.1:9999", "127.0.0.1:9999"},
	"advertise":                {"http://relay-7.branch:20080", "http://relay-7.branch:20080"},
	"gossip":                   {"10.0.0.7:7946", "10.0.0.7:7946"},
	"join":                     {"10.0.0.8:7946, 10.0.0.9:7946", "10.0.0.8:7946,10.0.0.9:7946"},
	"gossip-key-file":          {"/etc/relayd/gossip.key", "/etc/relayd/gossip.key"},
	"admin-token-file":         {"/etc/relayd/token", "/etc/relayd/token"},
	"tree-key-file":            {"/etc/relayd/tree.key", "/etc/relayd/tree.key"},
	"upstream":                 {"http://a:1, http://b:2", "http://a:1,http://b:2"},
	"upstream-proxy":           {"http://proxy:3128", "http://proxy:3128"},
	"fallback":                 {"http://origin:1, http://hq:2", "http://origin:1,http://hq:2"},
	"upstream-rate":            {"20MB/s", "20 MB/s"},
	"upstream-schedule":        {"Mon-Fri 08:00-18:00=2MB/s, *=50MB/s", "Mon-Fri 08:00-18:00=2MB/s, *=50MB/s"},
	"upstream-foreground-rate": {"10MB/s", "10 MB/s"},
	"upstream-urgent":          {"security/**, software/x/**", "security/**,software/x/**"},
	"report-interval":          {"30s", "30s"},
	"tls-listen":               {"127.0.0.1:8443", "127.0.0.1:8443"},
	"tls-cert":                 {"/etc/relayd/node.pem", "/etc/relayd/node.pem"},
	"tls-key":                  {"/etc/relayd/node.key", "/etc/relayd/node.key"},
	"upstream-ca":              {"/etc/relayd/ca.pem", "/etc/relayd/ca.pem"},
	"peer-ca":                  {"/etc/relayd/ca.pem", "/etc/relayd/ca.pem"},
	"upstream-connect-timeout": {"5s", "5s"},
	"upstream-stall-timeout":   {"1m", "1m0s"},
	"pubkey":                   {"/etc/relayd/catalog.pub", "/etc/relayd/catalog.pub"},
	"timestamp-key":            {"/etc/relayd/timestamp.key", "/etc/relayd/timestamp.key"},
	"timestamp-expiry":         {"12h", "12h0m0s"},
	"rollout-plan":             {"/etc/relayd/rollout.yaml", "/etc/relayd/rollout.yaml"},
	"rollout-key":              {"/etc/relayd/keys/rollout.key", "/etc/relayd/keys/rollout.key"},
	"rollout-expiry":           {"6h", "6h0m0s"},
	"allow-unlisted":           {"true", "true"},
	"catalog-max":              {"64MiB", "64 MiB"},
	"mirror-include":           {"security/**, software/linux-amd64/**", "security/**,software/linux-amd64/**"},
	"mirror-workers":           {"9", "9"},
	"max-hops":                 {"5", "5"},
	"mirror-interval":          {"90m", "1h30m0s"},
	"cache-max":                {"20GiB", "20 GiB"},
	"encode-max":               {"2GiB", "2 GiB"},
	"default-ttl":              {"90s", "1m30s"},
	"negative-ttl":             {"30s", "30s"},
	"max-fills":                {"12", "12"},
	"ignore-query":             {"debian/, go/", "debian/,go/"},
	"follow-redirects":         {"true", "true"},
	"forward-methods":          {"true", "true"},
	"forward-body-max":         {"4MiB", "4 MiB"},
	"sendfile":                 {"false", "false"},
	"drain-timeout":            {"45s", "45s"},
	"max-conns":                {"5000", "5000"},
	"events-max":               {"4000", "4000"},
	"events-per-addr":          {"100", "100"},
	"conns-per-addr":           {"300", "300"},
	"outcome-agents":           {"5000", "5000"},
	"client-stall-timeout":     {"2m", "2m0s"},
	"memory-limit":             {"256MiB", "256 MiB"},
	"log-level":                {"debug", "debug"},
	"log-format":               {"console", "console"},
}

// TestEveryKeyFromEverySource sets each key through each source alone.
func TestEveryKeyFromEverySource(t *testing.T) {
	t.Parallel()
	var cfg node.Config
	var lc logConfig
	for _, o := range serveOptions(&cfg, &lc) {
		if _, ok := samples[o.name]; !ok {
			t.Errorf("key %q has no sample in this test", o.name)
		}
	}
	for key, s := range samples {
		for _, src := range []string{"flag", "env", "file", "file via env"} {
			t.Run(src+"/"+key, func(t *testing.T) {
				t.Parallel()
				var args []string
				env := map[string]string{}
				switch src {
				case "flag":
					args = []string{"--" + key + "=" + s.in}
				case "env":
					env[envName(key)] = s.in
				case "file":
					args = []string{"--config", writeConfig(t, fmt.Sprintf("%s: %q\n", key, s.in))}
				case "file via env":
					env["RELAYD_CONFIG"] = writeConfig(t, fmt.Sprintf("%s: %q\n", key, s.in))
				}
				cfg, lc, err := load(args, env)
				if err != nil {
					t.Fatalf("load: %v", err)
				}
				if got := valueOf(t, cfg, lc, key); got != s.out {
					t.Fatalf("%s = %q, want %q", key, got, s.out)
				}
			})
		}
	}
}

func TestSources(t *testing.T) {
	t.Parallel()
	const file = `
listen: ":1111"
cache-max: 1GiB
upstream:
  - http://file-a:1
  - http://file-b:2
sendfile: false
max-fills: 7
default-ttl: 5m
`
	for _, tc := range []struct {
		name  string
		args  []string
		env   map[string]string
		file  string // written and passed with --config when set
		check func(t *testing.T, cfg node.Config, lc logConfig)
	}{
		{
			name: "env size",
			env:  map[string]string{"RELAYD_CACHE_MAX": "20GiB"},
			check: func(t *testing.T, cfg node.Config, _ logConfig) {
				if cfg.CacheMax != 20<<30 {
					t.Errorf("CacheMax = %d, want %d", cfg.CacheMax, int64(20<<30))
				}
			},
		},
		{
			name: "yaml file",
			file: file,
			check: func(t *testing.T, cfg node.Config, _ logConfig) {
				if cfg.Listen != ":1111" || cfg.CacheMax != 1<<30 || cfg.Cache.Sendfile || cfg.Cache.MaxFills != 7 ||
					cfg.Cache.DefaultTTL.String() != "5m0s" {
					t.Errorf("from file: %+v", cfg)
				}
				if want := []string{"http://file-a:1", "http://file-b:2"}; !slices.Equal(cfg.Upstream.Upstreams, want) {
					t.Errorf("upstreams %q, want %q", cfg.Upstream.Upstreams, want)
				}
			},
		},
		{
			name: "bool flag without value",
			args: []string{"--sendfile"},
			file: "sendfile: false\n",
			check: func(t *testing.T, cfg node.Config, _ logConfig) {
				if !cfg.Cache.Sendfile {
					t.Error("--sendfile did not set sendfile")
				}
			},
		},
		{
			name: "single-dash flags",
			args: []string{"-listen", ":2222", "-mode=origin"},
			check: func(t *testing.T, cfg node.Config, _ logConfig) {
				if cfg.Listen != ":2222" || cfg.Mode != "origin" {
					t.Errorf("listen %q mode %q", cfg.Listen, cfg.Mode)
				}
			},
		},
		{
			name: "empty file",
			file: "",
			check: func(t *testing.T, cfg node.Config, _ logConfig) {
				if !reflect.DeepEqual(cfg, node.DefaultConfig()) {
					t.Errorf("empty file changed the defaults: %+v", cfg)
				}
			},
		},
		{
			name: "comments only",
			file: "# nothing here\n",
			check: func(t *testing.T, cfg node.Config, _ logConfig) {
				if cfg.Listen != ":20080" {
					t.Errorf("listen %q", cfg.Listen)
				}
			},
		},
		{
			name: "flag config beats RELAYD_CONFIG",
			env:  map[string]string{"RELAYD_CONFIG": "/nonexistent/relayd.yaml"},
			file: "group: from-flag-file\n",
			check: func(t *testing.T, cfg node.Config, _ logConfig) {
				if cfg.Group != "from-flag-file" {
					t.Errorf("group %q, want the --config file's", cfg.Group)
				}
			},
		},
		{
			name: "empty RELAYD_CONFIG means no file",
			env:  map[string]string{"RELAYD_CONFIG": ""},
			check: func(t *testing.T, cfg node.Config, _ logConfig) {
				if cfg.Listen != ":20080" {
					t.Errorf("listen %q", cfg.Listen)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := tc.args
			if tc.file != "" || tc.name == "empty file" {
				args = append([]string{"--config", writeConfig(t, tc.file)}, args...)
			}
			cfg, lc, err := load(args, tc.env)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			tc.check(t, cfg, lc)
		})
	}
}

// TestPrecedence: flags beat env, env beats the file, the file beats the
// defaults; for a list the highest source that sets it replaces it whole.
func TestPrecedence(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		file     string // YAML, "" for no file
		env      map[string]string
		args     []string
		listen   string
		upstream []string
	}{
		{
			name:   "defaults",
			listen: ":20080",
		},
		{
			name:     "file",
			file:     "listen: ':1'\nupstream: [http://f1, http://f2]\n",
			listen:   ":1",
			upstream: []string{"http://f1", "http://f2"},
		},
		{
			name:     "file comma list",
			file:     "upstream: 'http://f1, http://f2,'\n",
			listen:   ":20080",
			upstream: []string{"http://f1", "http://f2"},
		},
		{
			name:     "env beats file",
			file:     "listen: ':1'\nupstream: [http://f1, http://f2]\n",
			env:      map[string]string{"RELAYD_LISTEN": ":2", "RELAYD_UPSTREAM": "http://e1"},
			listen:   ":2",
			upstream: []string{"http://e1"},
		},
		{
			name:     "env comma list",
			env:      map[string]string{"RELAYD_UPSTREAM": "http://e1, http://e2"},
			listen:   ":20080",
			upstream: []string{"http://e1", "http://e2"},
		},
		{
			name:     "flag beats env and file",
			file:     "listen: ':1'\nupstream: [http://f1, http://f2]\n",
			env:      map[string]string{"RELAYD_LISTEN": ":2", "RELAYD_UPSTREAM": "http://e1,http://e2"},
			args:     []string{"--listen", ":3", "--upstream", "http://x1"},
			listen:   ":3",
			upstream: []string{"http://x1"},
		},
		{
			name:     "flag beats file",
			file:     "listen: ':1'\nupstream: [http://f1, http://f2]\n",
			args:     []string{"--listen=:3"},
			listen:   ":3",
			upstream: []string{"http://f1", "http://f2"},
		},
		{
			name:     "repeated flags accumulate",
			env:      map[string]string{"RELAYD_UPSTREAM": "http://e1"},
			args:     []string{"--upstream", "http://x1", "--upstream=http://x2,http://x3"},
			listen:   ":20080",
			upstream: []string{"http://x1", "http://x2", "http://x3"},
		},
		{
			name:     "last scalar flag wins",
			args:     []string{"--listen=:3", "--listen=:4"},
			listen:   ":4",
			upstream: nil,
		},
		{
			name:     "empty env value clears the file's list",
			file:     "upstream: [http://f1]\n",
			env:      map[string]string{"RELAYD_UPSTREAM": ""},
			listen:   ":20080",
			upstream: nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config", writeConfig(t, tc.file)}, args...)
			}
			cfg, _, err := load(args, tc.env)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if cfg.Listen != tc.listen {
				t.Errorf("listen = %q, want %q", cfg.Listen, tc.listen)
			}
			if !slices.Equal(cfg.Upstream.Upstreams, tc.upstream) {
				t.Errorf("upstream = %q, want %q", cfg.Upstream.Upstreams, tc.upstream)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		file string   // YAML passed with --config when set
		want []string // substrings of the error: the key and the source
	}{
		{name: "unknown yaml key", file: "listen: ':1'\ncache-size: 1GiB\n", want: []string{"config file", `unknown key "cache-size"`}},
		{name: "bad duration in env", env: map[string]string{"RELAYD_DEFAULT_TTL": "soon"}, want: []string{"env RELAYD_DEFAULT_TTL", `"soon"`}},
		{name: "bad duration in file", file: "drain-timeout: forever\n", want: []string{"config file", "drain-timeout", `"forever"`}},
		{name: "bad duration in flag", args: []string{"--upstream-stall-timeout=10"}, want: []string{"flag --upstream-stall-timeout", `"10"`}},
		{name: "bad size in flag", args: []string{"--cache-max=20QB"}, want: []string{"flag --cache-max", `"20QB"`}},
		{name: "ambiguous size in env", env: map[string]string{"RELAYD_CACHE_MAX": "20G"}, want: []string{"env RELAYD_CACHE_MAX", `"20G"`}},
		{name: "negative size in file", file: "cache-max: -1GiB\n", want: []string{"config file", "cache-max"}},
		{name: "bad bool in flag", args: []string{"--sendfile=maybe"}, want: []string{"flag --sendfile", `"maybe"`}},
		{name: "bad bool in env", env: map[string]string{"RELAYD_SENDFILE": "maybe"}, want: []string{"env RELAYD_SENDFILE", `"maybe"`}},
		{name: "bad bool in file", file: "sendfile: maybe\n", want: []string{"config file", "sendfile", `"maybe"`}},
		{name: "bad number", args: []string{"--max-fills=lots"}, want: []string{"flag --max-fills", `"lots"`}},
		{name: "extra positional args", args: []string{"--listen=:1", "extra", "args"}, want: []string{"no arguments", "extra"}},
		{name: "unknown flag", args: []string{"--cache-size=1GiB"}, want: []string{"cache-size"}},
		{name: "flag without value", args: []string{"--listen"}, want: []string{"listen"}},
		{name: "malformed yaml", file: "listen: [unclosed\n", want: []string{"config file"}},
		{name: "yaml not a mapping", file: "- listen\n", want: []string{"config file"}},
		{name: "yaml mapping for a key", file: "listen:\n  host: a\n", want: []string{"config file", "listen", "single value"}},
		{name: "yaml list for a scalar key", file: "listen: [a, b]\n", want: []string{"config file", "listen", "single value"}},
		{name: "yaml nested list", file: "upstream: [[http://a]]\n", want: []string{"config file", "upstream", "list of strings"}},
		{name: "missing config file", args: []string{"--config", "/nonexistent/relayd.yaml"}, want: []string{"config file", "/nonexistent/relayd.yaml"}},
		{name: "missing config file from env", env: map[string]string{"RELAYD_CONFIG": "/nonexistent/env.yaml"}, want: []string{"config file", "/nonexistent/env.yaml"}},
		{name: "env error beats a good flag", env: map[string]string{"RELAYD_MAX_FILLS": "x"}, args: []string{"--max-fills=3"}, want: []string{"env RELAYD_MAX_FILLS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := tc.args
			if tc.file != "" {
				p := writeConfig(t, tc.file)
				args = append([]string{"--config", p}, args...)
				tc.want = append(tc.want, p) // the file is named
			}
			_, _, err := load(args, tc.env)
			if err == nil {
				t.Fatal("load succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			var ue usageError
			if !errors.As(err, &ue) {
				t.Errorf("error %q is not a usage error", err)
			}
			if code := exitCode(err); code != 2 {
				t.Errorf("exitCode = %d, want 2", code)
			}
		})
	}
}

func TestServeHelp(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"--help", "-h", "-help"} {
		t.Run(arg, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			_, _, err := loadServeConfig([]string{arg}, envOf(nil), &out)
			if !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("err = %v, want flag.ErrHelp", err)
			}
			if code := exitCode(err); code != 0 {
				t.Errorf("exitCode = %d, want 0", code)
			}
			var cfg node.Config
			var lc logConfig
			for _, o := range serveOptions(&cfg, &lc) {
				if !strings.Contains(out.String(), "--"+o.name+"\n") || !strings.Contains(out.String(), envName(o.name)) {
					t.Errorf("help does not list --%s and %s", o.name, envName(o.name))
				}
			}
			if !strings.Contains(out.String(), "RELAYD_CONFIG") {
				t.Error("help does not mention RELAYD_CONFIG")
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]string{
		"cache-max":                "RELAYD_CACHE_MAX",
		"node":                     "RELAYD_NODE",
		"upstream-connect-timeout": "RELAYD_UPSTREAM_CONNECT_TIMEOUT",
	} {
		if got := envName(key); got != want {
			t.Errorf("envName(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestRealMain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		args       []string
		code       int    // exitCode of the error; 0 for nil or help
		stdout     string // substring, "" for no check
		stderr     string
		wantErr    string
		wantNilErr bool
	}{
		{name: "version", args: []string{"version"}, stdout: "relayd " + version, wantNilErr: true},
		{name: "--version", args: []string{"--version"}, stdout: "relayd " + version, wantNilErr: true},
		{name: "help", args: []string{"help"}, stdout: "relayd serve", wantNilErr: true},
		{name: "no command", args: nil, code: 2, stderr: "Usage:", wantErr: "no command"},
		{name: "unknown command", args: []string{"srve"}, code: 2, wantErr: `unknown command "srve" (did you mean "relayd serve"?); see "relayd help"`},
		{name: "serve help", args: []string{"serve", "--help"}, code: 0, stderr: "--cache-max"},
		{name: "serve bad flag", args: []string{"serve", "--cache-max=lots"}, code: 2, wantErr: "flag --cache-max"},
		{name: "serve bad log level", args: []string{"serve", "--log-level=loud"}, code: 2, wantErr: "log-level"},
		{name: "serve bad log format", args: []string{"serve", "--log-format=xml"}, code: 2, wantErr: "log-format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := realMain(context.Background(), tc.args, &stdout, &stderr, envOf(nil))
			if tc.wantNilErr && err != nil {
				t.Fatalf("err = %v, want nil", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
			}
			if err != nil {
				if code := exitCode(err); code != tc.code {
					t.Errorf("exitCode(%v) = %d, want %d", err, code, tc.code)
				}
			}
			if !strings.Contains(stdout.String(), tc.stdout) {
				t.Errorf("stdout %q does not contain %q", stdout.String(), tc.stdout)
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tc.stderr)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"help", flag.ErrHelp, 0},
		{"usage", usageError{errors.New("bad flag")}, 2},
		{"wrapped usage", fmt.Errorf("serve: %w", usageError{errors.New("bad flag")}), 2},
		{"runtime failure", errors.New("listen: address in use"), 1},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("%s: exitCode = %d, want %d", tc.name, got, tc.want)
		}
	}
}
