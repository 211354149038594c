package node

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	notDir := filepath.Join(root, "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(root, "1.root.json") // only its presence is checked
	if err := os.WriteFile(pub, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	proxy := func(c *Config) { c.Upstream.Upstreams = []string{"http://parent:20080"} }
	for _, tc := range []struct {
		name   string
		change func(c *Config)
		want   []string // substrings of the error; none means valid
	}{
		{name: "proxy with upstream", change: proxy},
		{name: "proxy with several upstreams", change: func(c *Config) {
			c.Upstream.Upstreams = []string{"http://a:1", "https://b/base/"}
		}},
		{name: "origin with root", change: func(c *Config) { c.Mode, c.Root = ModeOrigin, root }},
		{name: "proxy without upstream", want: []string{"mode proxy needs --upstream"}},
		{name: "proxy with bad upstream", change: func(c *Config) {
			c.Upstream.Upstreams = []string{"http://ok:1", "ftp://mirror"}
		}, want: []string{`upstream "ftp://mirror": not a base URL`}},
		{name: "bad fallback", change: func(c *Config) { proxy(c); c.Upstream.Fallback = []string{"x"} },
			want: []string{`fallback "x": not a base URL`}},
		{name: "bad upstream proxy", change: func(c *Config) { proxy(c); c.Upstream.Proxy = "::x" },
			want: []string{`upstream-proxy "::x"`}},
		{name: "missing root file", change: func(c *Config) { proxy(c); c.Root = filepath.Join(root, "nope.json") },
			want: []string{`root "` + root + `/nope.json": no such file`}},
		{name: "pubkey refused", change: func(c *Config) { proxy(c); c.PubKeyFile = pub },
			want: []string{"pubkey", "--root 1.root.json", `"Migrating to TUF"`}},
		{name: "origin with timestamp key", change: func(c *Config) { c.Mode, c.Root, c.TimestampKeyFile = ModeOrigin, root, pub }},
		{name: "missing timestamp key", change: func(c *Config) {
			c.Mode, c.Root, c.TimestampKeyFile = ModeOrigin, root, filepath.Join(root, "ts.key")
		}, want: []string{`timestamp-key "` + root + `/ts.key": no such file`}},
		{name: "timestamp key on a relay", change: func(c *Config) { proxy(c); c.TimestampKeyFile = pub },
			want: []string{"timestamp-key is for mode origin"}},
		{name: "zero timestamp expiry", change: func(c *Config) { c.Mode, c.Root, c.TimestampExpiry = ModeOrigin, root, 0 },
			want: []string{"timestamp-expiry 0s"}},
		{name: "missing tls files", change: func(c *Config) {
			proxy(c)
			c.TLS.Cert, c.TLS.Key = filepath.Join(root, "c.pem"), root
		}, want: []string{`tls-cert "` + root + `/c.pem": no such file`, `tls-key "` + root + `" is a directory`}},
		{name: "missing tree key", change: func(c *Config) { proxy(c); c.TreeKeyFile = "/nonexistent/tree.key" },
			want: []string{`tree-key-file "/nonexistent/tree.key": no such file`}},
		{name: "negative mirror workers", change: func(c *Config) { proxy(c); c.Mirror.Workers = -3 },
			want: []string{"mirror-workers -3: want at least 1"}},
		{name: "zero max fills", change: func(c *Config) { proxy(c); c.Cache.MaxFills = 0 }, want: []string{"max-fills 0"}},
		{name: "zero max hops", change: func(c *Config) { proxy(c); c.MaxHops = 0 }, want: []string{"max-hops 0"}},
		{name: "zero intervals and timeouts", change: func(c *Config) {
			proxy(c)
			c.Mirror.Interval, c.ReportInterval, c.Upstream.ConnectTimeout, c.Upstream.StallTimeout = 0, -time.Second, 0, 0
		}, want: []string{"mirror-interval 0s", "report-interval -1s", "upstream-connect-timeout 0s", "upstream-stall-timeout 0s"}},
		{name: "negative durations", change: func(c *Config) {
			proxy(c)
			c.DrainTimeout, c.Cache.DefaultTTL, c.Cache.NegativeTTL = -1, -time.Minute, -time.Second
		}, want: []string{"drain-timeout -1ns", "default-ttl -1m0s", "negative-ttl -1s"}},
		{name: "zero drain and ttl", change: func(c *Config) { proxy(c); c.DrainTimeout, c.Cache.DefaultTTL = 0, 0 }},
		{name: "negative rate", change: func(c *Config) { proxy(c); c.Upstream.Rate = -1 }, want: []string{"upstream-rate -1"}},
		{name: "proxy without data dir", change: func(c *Config) { proxy(c); c.DataDir = "" }, want: []string{"--data-dir"}},
		{name: "origin without root", change: func(c *Config) { c.Mode = ModeOrigin }, want: []string{"mode origin needs --root"}},
		{name: "origin root missing", change: func(c *Config) { c.Mode, c.Root = ModeOrigin, filepath.Join(root, "nope") }, want: []string{"root", "is not a directory"}},
		{name: "origin root is a file", change: func(c *Config) { c.Mode, c.Root = ModeOrigin, notDir }, want: []string{"root", "is not a directory"}},
		{name: "mirror mode", change: func(c *Config) {
			proxy(c)
			c.Mode, c.Root = ModeMirror, pub
		}},
		{name: "mirror without upstream and root", change: func(c *Config) { c.Mode = ModeMirror },
			want: []string{"mode mirror needs --upstream", "mode mirror needs --root"}},
		{name: "mirror include without root", change: func(c *Config) { proxy(c); c.Mirror.Include = []string{"security/**"} },
			want: []string{"mirror-include needs --root"}},
		{name: "bad mirror include", change: func(c *Config) {
			proxy(c)
			c.Root, c.Mirror.Include = pub, []string{"/abs/**"}
		}, want: []string{`mirror-include: pattern "/abs/**"`}},
		{name: "unknown mode", change: func(c *Config) { c.Mode = "cache" }, want: []string{`mode "cache"`}},
		{name: "non-loopback admin without token", change: func(c *Config) { proxy(c); c.Admin = "0.0.0.0:20090" },
			want: []string{`admin "0.0.0.0:20090"`, "loopback", "--admin-token-file"}},
		{name: "all-interfaces admin without token", change: func(c *Config) { proxy(c); c.Admin = ":20090" },
			want: []string{`admin ":20090"`, "--admin-token-file"}},
		{name: "lan admin without token", change: func(c *Config) { proxy(c); c.Admin = "10.0.0.5:20090" },
			want: []string{"10.0.0.5:20090", "--admin-token-file"}},
		{name: "non-loopback admin with token", change: func(c *Config) {
			proxy(c)
			c.Admin, c.AdminTokenFile = "0.0.0.0:20090", pub
		}},
		{name: "localhost admin", change: func(c *Config) { proxy(c); c.Admin = "localhost:20090" }},
		{name: "ipv6 loopback admin", change: func(c *Config) { proxy(c); c.Admin = "[::1]:20090" }},
		{name: "other loopback admin", change: func(c *Config) { proxy(c); c.Admin = "127.0.0.2:20090" }},
		{name: "admin disabled", change: func(c *Config) { proxy(c); c.Admin = "" }},
		{name: "admin without port", change: func(c *Config) { proxy(c); c.Admin = "127.0.0.1" }, want: []string{`admin "127.0.0.1"`}},
		{name: "bad listen address", change: func(c *Config) { proxy(c); c.Listen = "20080" }, want: []string{`listen "20080"`}},
		{name: "listen too many colons", change: func(c *Config) { proxy(c); c.Listen = "::1:20080" }, want: []string{`listen "::1:20080"`}},
		{name: "empty listen", change: func(c *Config) { proxy(c); c.Listen = "" }, want: []string{"listen address is empty"}},
		{name: "empty node", change: func(c *Config) { proxy(c); c.Node = "" }, want: []string{"node name is empty"}},
		{name: "empty node and group", change: func(c *Config) { proxy(c); c.Node, c.Group = "", "" }, want: []string{"node name is empty"}},
		{name: "negative cache max", change: func(c *Config) { proxy(c); c.CacheMax = -1 }, want: []string{"cache-max"}},
		{name: "zero catalog max", change: func(c *Config) { proxy(c); c.Mirror.CatalogMax = 0 }, want: []string{"catalog-max 0"}},
		{name: "every problem named", change: func(c *Config) {
			c.Listen, c.Admin, c.Node = "nope", "0.0.0.0:1", ""
		}, want: []string{"--upstream", `listen "nope": missing port in address`, `admin "0.0.0.0:1"`, "node name is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := DefaultConfig()
			c.Node = "relay-1" // the host name may be anything
			if tc.change != nil {
				tc.change(&c)
			}
			before := c
			err := c.Validate()
			if !reflect.DeepEqual(c, before) {
				t.Errorf("Validate changed the config:\n got %+v\nwant %+v", c, before)
			}
			if err != nil && (strings.Contains(err.Error(), "hierarchy:") || strings.Contains(err.Error(), "glob:")) {
				t.Errorf("Validate() = %q: names a package, not a key", err)
			}
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error mentioning %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, does not mention %q", err, w)
				}
			}
		})
	}
}

func TestCompleteCleansDataDir(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	c.Upstream.Upstreams = []string{"http://parent:20080"}
	c.DataDir = "/var/lib//relayd/./cache/"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/var/lib//relayd/./cache/" {
		t.Fatalf("Validate changed DataDir to %q", c.DataDir)
	}
	c.Complete()
	if c.DataDir != "/var/lib/relayd/cache" {
		t.Fatalf("DataDir = %q, want it cleaned", c.DataDir)
	}
}

func TestCompleteDefaultsGroupToTheNode(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	c.Node, c.Upstream.Upstreams, c.DataDir = "relay-9", []string{"http://up"}, t.TempDir()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Group != "" {
		t.Fatalf("Validate set the group to %q", c.Group)
	}
	c.Complete()
	if c.Group != "relay-9" {
		t.Fatalf("group %q, want the node name", c.Group)
	}
	c.Group = "site"
	c.Complete()
	if c.Group != "site" {
		t.Fatalf("Complete replaced a set group: %q", c.Group)
	}
}
