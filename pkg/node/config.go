package node

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/relayd/relayd/pkg/glob"
	"github.com/relayd/relayd/pkg/hierarchy"
	"github.com/relayd/relayd/pkg/hops"
	"github.com/relayd/relayd/pkg/mirror"
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
	// Root is the directory an origin serves. Required in origin mode.
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
	// PubKeyFile is the catalog public key; without it catalogs are not
	// used (a proxy then caches as a plain HTTP cache). Required for mirror.
	// With it a proxy fails closed: no object until a verified catalog is
	// loaded, then only those it lists (Cache.AllowUnlisted lets the
	// others through as plain HTTP). The catalog's size cap is
	// Mirror.CatalogMax.
	PubKeyFile string
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
}

// DefaultConfig returns the defaults of ARCHITECTURE.md.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		Node: host, Mode: ModeProxy, DataDir: "/var/lib/relayd",
		Listen: ":20080", TLSListen: ":20081", Admin: "127.0.0.1:20090", Gossip: ":7946", MaxHops: hops.DefaultMax, DrainTimeout: 30 * time.Second,
		ReportInterval: 10 * time.Second, EventsPerAddr: DefaultEventsPerAddr,
		Cache: proxycache.DefaultConfig(), Upstream: hierarchy.DefaultConfig(), Mirror: mirror.DefaultConfig(),
	}
}

// Validate checks the configuration as a whole and names what is wrong.
func (c *Config) Validate() error {
	var errs []error
	switch c.Mode {
	case ModeOrigin:
		if c.Root == "" {
			errs = append(errs, errors.New("mode origin needs --root DIR"))
		} else if st, err := os.Stat(c.Root); err != nil || !st.IsDir() {
			errs = append(errs, fmt.Errorf("root %q is not a directory", c.Root))
		}
	case ModeProxy, ModeMirror:
		if len(c.Upstream.Upstreams) == 0 {
			errs = append(errs, fmt.Errorf("mode %s needs --upstream URL", c.Mode))
		}
		if c.Mode == ModeMirror && c.PubKeyFile == "" {
			errs = append(errs, errors.New("mode mirror needs --pubkey FILE to verify catalogs"))
		}
		if len(c.Mirror.Include) > 0 && c.PubKeyFile == "" {
			errs = append(errs, errors.New("mirror-include needs --pubkey FILE"))
		}
		if _, err := glob.New(c.Mirror.Include); err != nil {
			errs = append(errs, err)
		}
		for _, u := range c.Upstream.Upstreams {
			if _, err := hierarchy.ParseBase(u); err != nil {
				errs = append(errs, err)
			}
		}
		for _, u := range c.Upstream.Fallback {
			if _, err := hierarchy.ParseBase(u); err != nil {
				errs = append(errs, fmt.Errorf("fallback: %w", err))
			}
		}
		if c.Upstream.Rate < 0 {
			errs = append(errs, errors.New("upstream-rate is negative"))
		}
		if c.DataDir == "" {
			errs = append(errs, fmt.Errorf("mode %s needs --data-dir", c.Mode))
		}
	default:
		errs = append(errs, fmt.Errorf("mode %q: want origin, proxy or mirror", c.Mode))
	}
	if c.Node == "" {
		errs = append(errs, errors.New("node name is empty"))
	}
	if c.Group == "" {
		c.Group = c.Node
	}
	if c.Listen == "" {
		errs = append(errs, errors.New("listen address is empty"))
	} else if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen %q: %w", c.Listen, err))
	}
	if c.TLS.Cert != "" {
		if _, _, err := net.SplitHostPort(c.TLSListen); err != nil {
			errs = append(errs, fmt.Errorf("tls-listen %q: %w", c.TLSListen, err))
		}
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		errs = append(errs, errors.New("tls-cert and tls-key go together"))
	}
	if c.TLS.PeerCA != "" && c.TLS.Cert == "" {
		errs = append(errs, errors.New("peer-ca protects the TLS content port: set tls-cert and tls-key too"))
	}
	if c.Admin != "" {
		host, _, err := net.SplitHostPort(c.Admin)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("admin %q: %w", c.Admin, err))
		case c.AdminTokenFile == "" && !isLoopback(host):
			errs = append(errs, fmt.Errorf("admin %q is not a loopback address: set --admin-token-file to protect it", c.Admin))
		}
	}
	if c.MaxHops < 1 {
		errs = append(errs, fmt.Errorf("max-hops %d: want at least 1", c.MaxHops))
	}
	if c.ReportInterval <= 0 {
		errs = append(errs, fmt.Errorf("report-interval %s: want more than 0", c.ReportInterval))
	}
	if c.MaxConns < 0 || c.EventsMax < 0 || c.EventsPerAddr < 0 {
		errs = append(errs, errors.New("max-conns, events-max and events-per-addr must not be negative"))
	}
	if c.CacheMax < 0 {
		errs = append(errs, errors.New("cache-max is negative"))
	}
	if c.Mirror.CatalogMax <= 0 {
		errs = append(errs, fmt.Errorf("catalog-max %d: want more than 0", c.Mirror.CatalogMax))
	}
	if c.DataDir != "" {
		c.DataDir = filepath.Clean(c.DataDir)
	}
	return errors.Join(errs...)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
