package node

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/relayd/relayd/pkg/glob"
	"github.com/relayd/relayd/pkg/hierarchy"
	"github.com/relayd/relayd/pkg/hops"
	"github.com/relayd/relayd/pkg/mirror"
	"github.com/relayd/relayd/pkg/outcome"
	"github.com/relayd/relayd/pkg/proxycache"
	"github.com/relayd/relayd/pkg/tlsconf"
)

// Modes a node runs in.
const (
	ModeOrigin = "origin"
	ModeProxy  = "proxy"
	ModeMirror = "mirror"
)

// Config is everything a node needs. Each field is one config key (flag,
// RELAYD_* env var and YAML key); cmd/relayd maps them.
type Config struct {
	// Node names this relay. Default: the host name.
	Node string
	// Group is the relay group this node belongs to. Default: the node
	// name, a group of one. Relays of one site must name it; distinct
	// groups must have distinct names (the loop guard tells groups apart
	// by name).
	Group string
	// Mode is origin, proxy or mirror. Default proxy.
	Mode string
	// DataDir holds the store (index and blobs). Default /var/lib/relayd.
	DataDir string
	// Root is, for an origin, the directory it serves (the published
	// tree; required), and for a relay the trusted TUF root it verifies
	// the tree's metadata from (1.root.json of the tree's repository).
	// With it a relay is a TUF client: required for a mirror; a proxy
	// with it fails closed (no object until verified metadata is
	// loaded, then only what it lists, unless Cache.AllowUnlisted); a
	// proxy without it caches as a plain HTTP cache. The size cap of a
	// metadata file of unsigned length is Mirror.CatalogMax.
	Root string
	// Listen is the content port address. Default ":20080".
	Listen string
	// TLSListen is the TLS content port address, served when TLS.Cert is
	// set. Default ":20081".
	TLSListen string
	// TLS is the node's TLS material: its certificate, the CA that
	// verifies upstreams (default: the system pool) and the CA whose
	// client certificates the TLS port requires (default: none asked).
	// Reloaded on SIGHUP.
	TLS tlsconf.Files
	// Advertise is the content URL agents and peers reach this relay at.
	// Default: http://<listen address>, with the host name for a
	// wildcard address.
	Advertise string
	// Gossip is the group gossip address (TCP and UDP). Default ":7946";
	// empty runs the relay alone, without a group.
	Gossip string
	// Join lists gossip addresses (host:port) of group members to join.
	Join []string
	// GossipKeyFile holds the group's gossip encryption key (base64 of 16,
	// 24 or 32 bytes). Default none: gossip in clear text.
	GossipKeyFile string
	// Admin is the admin API address. Default "127.0.0.1:20090"; anything
	// but loopback requires AdminTokenFile. Empty disables it.
	Admin string
	// AdminTokenFile holds the admin bearer token. Default none.
	AdminTokenFile string
	// TreeKeyFile holds the tree key (`relayd keygen --tree`, base64 of
	// 32 bytes), the same file on every relay of the tree: with it a relay
	// signs its reports and event streams to its parents and checks its
	// children's. Default none: reports and child-relay streams are
	// refused (401) unless a verified client certificate proves them
	// (PeerCA), and this relay follows its parents as an agent.
	TreeKeyFile string
	// CacheMax caps the bytes the store keeps (blobs plus fills in
	// progress). 0 = no cap. Default 0.
	CacheMax int64
	// MaxHops is the most groups a request may have crossed before this
	// relay refuses it (loop guard). Default 8.
	MaxHops int
	// DrainTimeout bounds how long shutdown waits for in-flight responses.
	// Default 30s.
	DrainTimeout time.Duration
	// PubKeyFile is the key of the catalog format that TUF replaced: it
	// is refused with a pointer to the migration (Root replaces it).
	PubKeyFile string
	// TimestampKeyFile is the origin's online timestamp key (PKCS#8 PEM,
	// `relayd keygen --role timestamp`): with it the origin re-signs
	// TREE/-/tuf/timestamp.json when less than half of TimestampExpiry is
	// left. Default none: the timestamp is re-signed elsewhere (`relayd
	// publish --timestamp-only` from cron) or expires.
	TimestampKeyFile string
	// TimestampExpiry is the lifetime of a timestamp the origin re-signs.
	// Default 24h.
	TimestampExpiry time.Duration
	// RolloutPlan is the origin's rollout plan (YAML, pkg/rollout): the
	// rings of groups a new generation goes through. Default none: no
	// gates are signed (agents of a tree whose root has a rollout role
	// then install nothing newer).
	RolloutPlan string
	// RolloutKeyFile is the origin's online rollout key (PKCS#8 PEM,
	// `relayd keygen --role rollout`) that signs TREE/-/tuf/rollout.json.
	// Required with RolloutPlan.
	RolloutKeyFile string
	// RolloutExpiry is the lifetime of signed gates; the origin re-signs
	// them at half of it and on every change. Default 24h.
	RolloutExpiry time.Duration
	// Mirror is the mirror's behaviour (mirror mode, and the mirrored
	// kinds of a proxy).
	Mirror mirror.Config
	// Cache is the proxy cache's behaviour.
	Cache proxycache.Config
	// Upstream is where a relay fetches from: its parent group (or the
	// origin), the fallback, the WAN rate cap.
	Upstream hierarchy.Config
	// ReportInterval is how often a relay reports itself and its subtree
	// to its parents (for /v1/tree); reports expire after three. Default
	// 10s.
	ReportInterval time.Duration
	// MaxConns caps the content port's connections, plain and TLS
	// together; beyond it a connection is closed at once. Default 0:
	// the descriptor limit (RLIMIT_NOFILE, raised to its hard limit at
	// start) less a reserve for the admin port, gossip, upstreams, the
	// store and fills (see reserveFor); a larger value is lowered to that.
	MaxConns int
	// EventsMax caps the /-/events streams (503 too_many_streams beyond).
	// Default 0: MaxConns less a tenth (at least 64), kept for health
	// checks and object requests; a larger value is lowered to that.
	EventsMax int
	// EventsPerAddr caps the /-/events streams from one client address
	// (an IPv6 /64 counts as one). 0: no per-address cap. Default 10240.
	EventsPerAddr int
	// ConnsPerAddr caps the content connections of one client address
	// (an IPv6 /64 counts as one) besides its /-/events streams; beyond
	// it a new connection is closed at once. 0: no cap. Default 4096,
	// lowered to a quarter of MaxConns when that is less.
	ConnsPerAddr int
	// OutcomeAgents is the most agents whose outcome (POST /-/outcome)
	// the relay remembers, the oldest report forgotten first; one client
	// address reports for at most EventsPerAddr of them. 0: outcomes are
	// not taken (404) and /v1/compliance answers 404. Default 100,000.
	OutcomeAgents int
	// ClientStallTimeout ends a response whose client took nothing for
	// this long (no progress writing; not a bound on the whole response,
	// which may take hours over a slow link). 0: none. Default 60s.
	ClientStallTimeout time.Duration
	// MemoryLimit is the process's memory budget in bytes, its soft
	// memory limit (pkg/gcpace; cmd/relayd applies it, the node does
	// not). 0: none.
	MemoryLimit int64
	// EncodeMax is the disk budget of the encoded forms (zstd, dcz deltas;
	// pkg/contentcoding) a relay sends to requests that accept them, kept
	// in DataDir/encoded. 0: never encode. Default 1 GiB.
	EncodeMax int64
}

// DefaultConfig returns the defaults of ARCHITECTURE.md.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		Node: host, Mode: ModeProxy, DataDir: "/var/lib/relayd",
		Listen: ":20080", TLSListen: ":20081", Admin: "127.0.0.1:20090", Gossip: ":7946", MaxHops: hops.DefaultMax, DrainTimeout: 30 * time.Second,
		ReportInterval: 10 * time.Second, EventsPerAddr: DefaultEventsPerAddr, OutcomeAgents: outcome.DefaultMaxAgents,
		ConnsPerAddr: DefaultConnsPerAddr, ClientStallTimeout: DefaultClientStallTimeout, EncodeMax: 1 << 30,
		Cache: proxycache.DefaultConfig(), Upstream: hierarchy.DefaultConfig(), Mirror: mirror.DefaultConfig(),
		TimestampExpiry: 24 * time.Hour, RolloutExpiry: 24 * time.Hour,
	}
}

// Complete fills in the defaults that depend on other keys: the group
// is the node's name when none is set (a group of one), and the data
// directory is cleaned. New calls it; so may a caller that wants to show
// or validate the configuration New will run. Calling it twice changes
// nothing.
func (c *Config) Complete() {
	if c.Group == "" {
		c.Group = c.Node
	}
	if c.DataDir != "" {
		c.DataDir = filepath.Clean(c.DataDir)
	}
}

// Validate checks the configuration as a whole and names what is wrong,
// each problem by its key (as flag, env and YAML name it). It does not
// change c; call Complete first for the defaults that depend on other
// keys.
func (c *Config) Validate() error {
	var errs []error
	if c.PubKeyFile != "" {
		errs = append(errs, errors.New(`pubkey: the signed catalog became a TUF repository; give the tree's trusted root with --root 1.root.json instead (docs/operations.md, "Migrating to TUF")`))
	}
	switch c.Mode {
	case ModeOrigin:
		if (c.RolloutPlan == "") != (c.RolloutKeyFile == "") {
			errs = append(errs, errors.New("rollout-plan and rollout-key go together: the origin signs the plan's gates with the rollout key"))
		}
		if c.RolloutPlan != "" && c.DataDir == "" {
			errs = append(errs, errors.New("rollout-plan needs --data-dir (the rollout's state is kept there)"))
		}
		if c.Root == "" {
			errs = append(errs, errors.New("mode origin needs --root DIR"))
		} else if st, err := os.Stat(c.Root); err != nil || !st.IsDir() {
			errs = append(errs, fmt.Errorf("root %q is not a directory", c.Root))
		}
	case ModeProxy, ModeMirror:
		errs = append(errs, c.validateRelay()...)
	default:
		errs = append(errs, fmt.Errorf("mode %q: want origin, proxy or mirror", c.Mode))
	}
	if c.Node == "" {
		errs = append(errs, errors.New("node name is empty"))
	}
	if c.Listen == "" {
		errs = append(errs, errors.New("listen address is empty"))
	} else if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen %q: %w", c.Listen, unwrapAddr(err)))
	}
	errs = append(errs, c.validateTLS()...)
	if c.Admin != "" {
		host, _, err := net.SplitHostPort(c.Admin)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("admin %q: %w", c.Admin, unwrapAddr(err)))
		case c.AdminTokenFile == "" && !isLoopback(host):
			errs = append(errs, fmt.Errorf("admin %q is not a loopback address: set --admin-token-file to protect it", c.Admin))
		}
	}
	errs = append(errs, c.validateFiles()...)
	errs = append(errs, c.validateCounts()...)
	return errors.Join(errs...)
}

// validateRelay checks the keys of a proxy or a mirror.
func (c *Config) validateRelay() []error {
	var errs []error
	if len(c.Upstream.Upstreams) == 0 {
		errs = append(errs, fmt.Errorf("mode %s needs --upstream URL", c.Mode))
	}
	if c.Mode == ModeMirror && c.Root == "" {
		errs = append(errs, errors.New("mode mirror needs --root FILE (the trusted root, 1.root.json) to verify the metadata"))
	}
	if len(c.Mirror.Include) > 0 && c.Root == "" {
		errs = append(errs, errors.New("mirror-include needs --root FILE"))
	}
	if c.TimestampKeyFile != "" {
		errs = append(errs, errors.New("timestamp-key is for mode origin"))
	}
	if c.RolloutPlan != "" || c.RolloutKeyFile != "" {
		errs = append(errs, errors.New("rollout-plan and rollout-key are for mode origin (relays follow the gates it signs)"))
	}
	if _, err := glob.New(c.Mirror.Include); err != nil {
		errs = append(errs, fmt.Errorf("mirror-include: %w", err))
	}
	for _, u := range c.Upstream.Upstreams {
		errs = append(errs, checkBase("upstream", u))
	}
	for _, u := range c.Upstream.Fallback {
		errs = append(errs, checkBase("fallback", u))
	}
	if p := c.Upstream.Proxy; p != "" {
		if u, err := url.Parse(p); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("upstream-proxy %q: not a proxy URL: want http://host:port", p))
		}
	}
	if c.DataDir == "" {
		errs = append(errs, fmt.Errorf("mode %s needs --data-dir", c.Mode))
	}
	if _, err := hierarchy.ParseSchedule(c.Upstream.Schedule, c.Upstream.Location); err != nil {
		errs = append(errs, err)
	}
	if _, err := glob.New(c.Upstream.Urgent); err != nil {
		errs = append(errs, fmt.Errorf("upstream-urgent: %w", err))
	}
	return errs
}

// checkBase checks one base URL of key (upstream, fallback).
func checkBase(key, s string) error {
	if _, err := hierarchy.ParseBase(s); err != nil {
		return fmt.Errorf("%s %q: not a base URL: want http(s)://host[:port][/path] without query", key, s)
	}
	return nil
}

// unwrapAddr drops the "address x:" that net puts before its reason,
// which the caller's message already names.
func unwrapAddr(err error) error {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return errors.New(ae.Err)
	}
	return err
}

// validateTLS checks that the TLS keys go together.
func (c *Config) validateTLS() []error {
	var errs []error
	if c.TLS.Cert != "" {
		if _, _, err := net.SplitHostPort(c.TLSListen); err != nil {
			errs = append(errs, fmt.Errorf("tls-listen %q: %w", c.TLSListen, unwrapAddr(err)))
		}
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		errs = append(errs, errors.New("tls-cert and tls-key go together"))
	}
	if c.TLS.PeerCA != "" && c.TLS.Cert == "" {
		errs = append(errs, errors.New("peer-ca protects the TLS content port: set tls-cert and tls-key too"))
	}
	return errs
}

// validateFiles checks that every file a key names can be read, so that
// a misspelt path is named by its key before anything starts. What is in
// the files is checked by New.
func (c *Config) validateFiles() []error {
	files := []struct{ key, path string }{
		{"tree-key-file", c.TreeKeyFile}, {"gossip-key-file", c.GossipKeyFile}, {"timestamp-key", c.TimestampKeyFile},
		{"rollout-plan", c.RolloutPlan}, {"rollout-key", c.RolloutKeyFile},
		{"admin-token-file", c.AdminTokenFile}, {"tls-cert", c.TLS.Cert}, {"tls-key", c.TLS.Key},
		{"upstream-ca", c.TLS.UpstreamCA}, {"peer-ca", c.TLS.PeerCA},
	}
	if c.Mode != ModeOrigin {
		files = append(files, struct{ key, path string }{"root", c.Root}) // a relay's trusted root
	}
	var errs []error
	for _, f := range files {
		if f.path == "" {
			continue
		}
		st, err := os.Stat(f.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			errs = append(errs, fmt.Errorf("%s %q: no such file", f.key, f.path))
		case errors.Is(err, fs.ErrPermission):
			errs = append(errs, fmt.Errorf("%s %q: permission denied", f.key, f.path))
		case err != nil:
			errs = append(errs, fmt.Errorf("%s %q: %w", f.key, f.path, err))
		case st.IsDir():
			errs = append(errs, fmt.Errorf("%s %q is a directory: want a file", f.key, f.path))
		}
	}
	return errs
}

// validateCounts refuses numbers and durations that cannot mean
// anything: a negative size or duration, no workers, no hops.
func (c *Config) validateCounts() []error {
	var errs []error
	atLeast := func(key string, v, least int) {
		if v < least {
			errs = append(errs, fmt.Errorf("%s %d: want at least %d", key, v, least))
		}
	}
	atLeast("max-hops", c.MaxHops, 1)
	atLeast("mirror-workers", c.Mirror.Workers, 1)
	atLeast("max-fills", c.Cache.MaxFills, 1)
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s %s: want more than 0", key, d))
		}
	}
	positive("report-interval", c.ReportInterval)
	positive("timestamp-expiry", c.TimestampExpiry)
	positive("rollout-expiry", c.RolloutExpiry)
	positive("mirror-interval", c.Mirror.Interval)
	positive("upstream-connect-timeout", c.Upstream.ConnectTimeout)
	positive("upstream-stall-timeout", c.Upstream.StallTimeout)
	notNegative := func(key string, d time.Duration) {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s %s: want 0 or more", key, d))
		}
	}
	notNegative("drain-timeout", c.DrainTimeout)
	notNegative("default-ttl", c.Cache.DefaultTTL)
	notNegative("negative-ttl", c.Cache.NegativeTTL)
	notNegativeCount := func(key string, v int) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s %d: want 0 or more", key, v))
		}
	}
	notNegativeCount("max-conns", c.MaxConns)
	notNegativeCount("events-max", c.EventsMax)
	notNegativeCount("events-per-addr", c.EventsPerAddr)
	notNegativeCount("conns-per-addr", c.ConnsPerAddr)
	notNegativeCount("outcome-agents", c.OutcomeAgents)
	notNegative("client-stall-timeout", c.ClientStallTimeout)
	if c.MemoryLimit < 0 {
		errs = append(errs, fmt.Errorf("memory-limit %d: want 0 (no limit) or more", c.MemoryLimit))
	}
	if c.CacheMax < 0 {
		errs = append(errs, fmt.Errorf("cache-max %d: want 0 (no quota) or more", c.CacheMax))
	}
	if c.Upstream.Rate < 0 {
		errs = append(errs, fmt.Errorf("upstream-rate %d: want 0 (no cap) or more", c.Upstream.Rate))
	}
	if c.Upstream.ForegroundRate < 0 {
		errs = append(errs, fmt.Errorf("upstream-foreground-rate %d: want 0 (no cap) or more", c.Upstream.ForegroundRate))
	}
	if c.Mirror.CatalogMax <= 0 {
		errs = append(errs, fmt.Errorf("catalog-max %d: want more than 0", c.Mirror.CatalogMax))
	}
	return errs
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
