package main

// Config loading: every serve key is a flag (--cache-max), an environment
// variable (RELAYD_CACHE_MAX) and a key of the YAML file (cache-max:).
// Flags beat env, env beats the file, the file beats the defaults.

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/relayd/relayd/pkg/node"
	"github.com/relayd/relayd/pkg/units"
)

// option is one config key.
type option struct {
	name  string
	usage string
	value flag.Value
	// list options take several values (repeated flag, comma list, YAML
	// sequence); a source that sets one replaces the lower sources' list.
	list bool
}

// envName is the environment variable of a key: cache-max → RELAYD_CACHE_MAX.
func envName(key string) string {
	return "RELAYD_" + strings.ToUpper(strings.ReplaceAll(key, "-", "_"))
}

// serveOptions binds every serve key to its field in cfg and lc.
func serveOptions(cfg *node.Config, lc *logConfig) []option {
	return []option{
		{name: "node", usage: "name of this node", value: (*stringValue)(&cfg.Node)},
		{name: "group", usage: "relay group this node belongs to", value: (*stringValue)(&cfg.Group)},
		{name: "mode", usage: "origin, proxy or mirror", value: (*stringValue)(&cfg.Mode)},
		{name: "data-dir", usage: "directory for the cache index and blobs", value: (*stringValue)(&cfg.DataDir)},
		{name: "root", usage: "mode origin: the directory it serves; proxy and mirror: the trusted TUF root (1.root.json of the tree) the metadata is verified from (a proxy without it caches as a plain HTTP cache)", value: (*stringValue)(&cfg.Root)},
		{name: "timestamp-key", usage: "mode origin: the online timestamp key (relayd keygen --role timestamp); the origin re-signs TREE/-/tuf/timestamp.json when less than half of timestamp-expiry is left", value: (*stringValue)(&cfg.TimestampKeyFile)},
		{name: "timestamp-expiry", usage: "lifetime of a timestamp the origin re-signs (the freeze window agents and relays accept)", value: (*durationValue)(&cfg.TimestampExpiry)},
		{name: "rollout-plan", usage: "mode origin: the staged rollout plan (YAML: rings of groups, soak, gate); the origin signs the gates into TREE/-/tuf/rollout.json with rollout-key", value: (*stringValue)(&cfg.RolloutPlan)},
		{name: "rollout-key", usage: "mode origin: the online rollout key (relayd keygen --role rollout) the gates are signed with", value: (*stringValue)(&cfg.RolloutKeyFile)},
		{name: "rollout-expiry", usage: "lifetime of the signed rollout gates; the origin re-signs them at half of it and on every change", value: (*durationValue)(&cfg.RolloutExpiry)},
		{name: "listen", usage: "content port address (agents and child relays)", value: (*stringValue)(&cfg.Listen)},
		{name: "tls-listen", usage: "TLS content port address (served when tls-cert is set)", value: (*stringValue)(&cfg.TLSListen)},
		{name: "tls-cert", usage: "PEM certificate (chain) for the TLS content port, also presented to parents that ask; reloaded on SIGHUP", value: (*stringValue)(&cfg.TLS.Cert)},
		{name: "tls-key", usage: "PEM private key of tls-cert", value: (*stringValue)(&cfg.TLS.Key)},
		{name: "upstream-ca", usage: "PEM CA certificates that verify upstreams and peers over https (default: the system pool)", value: (*stringValue)(&cfg.TLS.UpstreamCA)},
		{name: "peer-ca", usage: "PEM CA certificates: the TLS content port requires a client certificate signed by one (only your relays pull)", value: (*stringValue)(&cfg.TLS.PeerCA)},
		{name: "advertise", usage: "content URL agents and peers reach this relay at (default http://<listen>)", value: (*stringValue)(&cfg.Advertise)},
		{name: "gossip", usage: "group gossip address, TCP+UDP (empty: no group)", value: (*stringValue)(&cfg.Gossip)},
		{name: "join", usage: "gossip addresses of group members to join, comma-separated", value: (*listValue)(&cfg.Join), list: true},
		{name: "gossip-key-file", usage: "file with the group's gossip key (base64, 16/24/32 bytes)", value: (*stringValue)(&cfg.GossipKeyFile)},
		{name: "admin", usage: "admin API address; non-loopback needs --admin-token-file; empty disables", value: (*stringValue)(&cfg.Admin)},
		{name: "admin-token-file", usage: "file holding the admin API bearer token", value: (*stringValue)(&cfg.AdminTokenFile)},
		{name: "tree-key-file", usage: "file with the tree key (relayd keygen --tree), the same on every relay of the tree: signs reports and relay streams to parents, checks the children's (without it they are refused)", value: (*stringValue)(&cfg.TreeKeyFile)},
		{name: "upstream", usage: "upstream base URLs (parent relays or origin), comma-separated", value: (*listValue)(&cfg.Upstream.Upstreams), list: true},
		{name: "fallback", usage: "base URLs used only when every upstream fails (grandparent group or origin), comma-separated", value: (*listValue)(&cfg.Upstream.Fallback), list: true},
		{name: "upstream-rate", usage: "cap on bytes per second pulled from upstreams, fills and syncs together, e.g. 20MB/s (0 = no cap)", value: (*units.Rate)(&cfg.Upstream.Rate)},
		{name: "upstream-schedule", usage: `transfer windows for background WAN traffic (mirror syncs, prefetch), first match wins, in the local time zone (TZ), e.g. "Mon-Fri 08:00-18:00=2MB/s, *=50MB/s"; a rate of 0 holds it until the window ends (empty = no windows)`, value: (*stringValue)(&cfg.Upstream.Schedule)},
		{name: "upstream-foreground-rate", usage: "cap on bytes per second of fills agents wait for, which no window holds, e.g. 10MB/s (0 = no cap of their own)", value: (*units.Rate)(&cfg.Upstream.ForegroundRate)},
		{name: "upstream-urgent", usage: "path patterns whose background transfers ignore the upstream-schedule, e.g. security/**, comma-separated", value: (*listValue)(&cfg.Upstream.Urgent), list: true},
		{name: "report-interval", usage: "how often this relay reports itself and its subtree to its parents", value: (*durationValue)(&cfg.ReportInterval)},
		{name: "upstream-proxy", usage: "HTTP(S) proxy URL for all upstream traffic", value: (*stringValue)(&cfg.Upstream.Proxy)},
		{name: "upstream-connect-timeout", usage: "upstream TCP/TLS connect timeout", value: (*durationValue)(&cfg.Upstream.ConnectTimeout)},
		{name: "upstream-stall-timeout", usage: "an upstream that sends nothing for this long has failed", value: (*durationValue)(&cfg.Upstream.StallTimeout)},
		{name: "pubkey", usage: "removed: relays verify TUF metadata from --root (docs/operations.md, \"Migrating to TUF\")", value: (*stringValue)(&cfg.PubKeyFile)},
		{name: "allow-unlisted", usage: "with --root, serve paths the signed metadata does not list as a plain HTTP cache would (off: they get 404 not_in_catalog)", value: (*boolValue)(&cfg.Cache.AllowUnlisted)},
		{name: "catalog-max", usage: "largest TUF metadata file of unsigned length (timestamp, root) accepted from upstream, e.g. 256MiB; a longer one is refused having cost at most this much memory", value: (*units.Bytes)(&cfg.Mirror.CatalogMax)},
		{name: "mirror-include", usage: "target paths to mirror, e.g. security/** (mirror mode: default all; proxy mode: these kinds are mirrored, the rest proxied)", value: (*listValue)(&cfg.Mirror.Include), list: true},
		{name: "mirror-workers", usage: "objects a mirror sync downloads in parallel", value: (*intValue)(&cfg.Mirror.Workers)},
		{name: "mirror-interval", usage: "how often the upstream's timestamp is polled", value: (*durationValue)(&cfg.Mirror.Interval)},
		{name: "cache-max", usage: "disk quota of the cache, e.g. 20GiB (0 = no quota)", value: (*units.Bytes)(&cfg.CacheMax)},
		{name: "encode-max", usage: "disk budget of the zstd and dcz (delta) forms of objects sent to relays that accept them, kept in data-dir/encoded, e.g. 2GiB (0 = never encode)", value: (*units.Bytes)(&cfg.EncodeMax)},
		{name: "default-ttl", usage: "freshness of responses without explicit expiry (0 = RFC 9111 heuristics)", value: (*durationValue)(&cfg.Cache.DefaultTTL)},
		{name: "negative-ttl", usage: "how long an upstream 404 or 410 without freshness or Last-Modified is served before it is asked again", value: (*durationValue)(&cfg.Cache.NegativeTTL)},
		{name: "ignore-query", usage: "path prefixes whose query string is dropped from the cache key and the upstream request (cache-busting parameters), comma-separated", value: (*listValue)(&cfg.Cache.IgnoreQuery), list: true},
		{name: "follow-redirects", usage: "follow upstream redirects (a CDN-fronted upstream) instead of passing them to clients; the answer keeps the redirect's freshness", value: (*boolValue)(&cfg.Upstream.FollowRedirects)},
		{name: "forward-methods", usage: "pass requests of other methods than GET and HEAD (POST, PUT, DELETE, ...) to the upstream, never stored, invalidating what they change (proxy mode without a signed catalog; off: 405)", value: (*boolValue)(&cfg.Cache.ForwardMethods)},
		{name: "forward-body-max", usage: "largest request body forwarded with --forward-methods, e.g. 1MiB; a longer one gets 413", value: (*units.Bytes)(&cfg.Cache.ForwardBodyMax)},
		{name: "max-fills", usage: "upstream fills in flight before new misses get 503", value: (*intValue)(&cfg.Cache.MaxFills)},
		{name: "sendfile", usage: "serve cached files larger than 128 KiB with sendfile(2) (saves a copy on real NICs; on loopback either can win)", value: (*boolValue)(&cfg.Cache.Sendfile)},
		{name: "max-hops", usage: "most relay groups a request may have crossed (loop guard)", value: (*intValue)(&cfg.MaxHops)},
		{name: "drain-timeout", usage: "how long shutdown waits for responses in flight", value: (*durationValue)(&cfg.DrainTimeout)},
		{name: "max-conns", usage: "content port connections, plain and TLS together, beyond which new ones are closed at once (0 = the descriptor limit less a reserve for the admin port, store, gossip and upstreams)", value: (*intValue)(&cfg.MaxConns)},
		{name: "events-max", usage: "/-/events streams held at once, beyond which 503 too_many_streams (0 = max-conns less a tenth, kept for health checks and objects)", value: (*intValue)(&cfg.EventsMax)},
		{name: "events-per-addr", usage: "/-/events streams one client address may hold, an IPv6 /64 counting as one (0 = no per-address cap)", value: (*intValue)(&cfg.EventsPerAddr)},
		{name: "outcome-agents", usage: "agents whose install outcome (POST /-/outcome) this relay remembers for /v1/compliance and its reports, the oldest report forgotten first; one address reports for at most events-per-addr of them (0 = outcomes not taken)", value: (*intValue)(&cfg.OutcomeAgents)},
		{name: "conns-per-addr", usage: "content port connections one client address may hold besides its /-/events streams, an IPv6 /64 counting as one; beyond it new ones are closed at once (at most a quarter of max-conns; 0 = no per-address cap)", value: (*intValue)(&cfg.ConnsPerAddr)},
		{name: "client-stall-timeout", usage: "a response whose client takes no byte for this long is ended (not a bound on the whole response; 0 = never)", value: (*durationValue)(&cfg.ClientStallTimeout)},
		{name: "memory-limit", usage: "memory budget of the process, e.g. 256MiB: its soft memory limit (as GOMEMLIMIT); while the live heap is under half of it the collector runs only near it (0 = no limit: collections paced by the live heap)", value: (*units.Bytes)(&cfg.MemoryLimit)},
		{name: "log-level", usage: "debug, info, warn or error", value: (*stringValue)(&lc.Level)},
		{name: "log-format", usage: "json or console", value: (*stringValue)(&lc.Format)},
	}
}

// recorder stands in for an option while the command line is parsed, so
// that flags can be applied after the file and the environment.
type recorder struct {
	opt  *option
	vals []string
}

func (r *recorder) String() string { return "" }
func (r *recorder) Set(s string) error {
	r.vals = append(r.vals, s)
	return nil
}
func (r *recorder) IsBoolFlag() bool {
	b, ok := r.opt.value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// loadServeConfig builds the serve configuration from defaults, the
// --config file, RELAYD_* variables and flags, in rising precedence.
func loadServeConfig(args []string, env func(string) (string, bool), stderr io.Writer) (node.Config, logConfig, error) {
	cfg := node.DefaultConfig()
	lc := logConfig{Level: "info", Format: "json"}
	opts := serveOptions(&cfg, &lc)

	fs := flag.NewFlagSet("relayd serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var configPath string
	fs.StringVar(&configPath, "config", "", "YAML config file")
	recs := make([]*recorder, len(opts))
	for i := range opts {
		recs[i] = &recorder{opt: &opts[i]}
		fs.Var(recs[i], opts[i].name, opts[i].usage)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printServeHelp(stderr, opts)
			return cfg, lc, err
		}
		return cfg, lc, flagError(fs, err, stderr, "relayd serve [--config FILE] [flags]")
	}
	if fs.NArg() > 0 {
		return cfg, lc, usageError{fmt.Errorf("serve takes no arguments, got %q", fs.Args())}
	}
	if configPath == "" {
		configPath, _ = env("RELAYD_CONFIG")
	}
	if configPath != "" {
		if err := applyFile(configPath, opts); err != nil {
			return cfg, lc, usageError{err}
		}
	}
	for i := range opts {
		name := envName(opts[i].name)
		if v, ok := env(name); ok {
			if err := apply(&opts[i], splitList(&opts[i], v)); err != nil {
				return cfg, lc, usageError{fmt.Errorf("env %s: %w", name, err)}
			}
		}
	}
	for _, r := range recs {
		if len(r.vals) == 0 {
			continue
		}
		var vals []string
		for _, v := range r.vals {
			vals = append(vals, splitList(r.opt, v)...)
		}
		if err := apply(r.opt, vals); err != nil {
			return cfg, lc, usageError{fmt.Errorf("flag --%s: %w", r.opt.name, err)}
		}
	}
	return cfg, lc, nil
}

// splitList splits a list option's comma-separated value.
func splitList(o *option, v string) []string {
	if !o.list {
		return []string{v}
	}
	return splitComma(v)
}

// apply sets an option from one source, replacing a list.
func apply(o *option, vals []string) error {
	if o.list {
		*(o.value.(*listValue)) = nil
	}
	for _, v := range vals {
		if err := o.value.Set(v); err != nil {
			return err
		}
	}
	return nil
}

// applyFile reads a flat YAML mapping of keys to values.
func applyFile(path string, opts []option) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var doc map[string]yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	byName := make(map[string]*option, len(opts))
	for i := range opts {
		byName[opts[i].name] = &opts[i]
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		o, ok := byName[k]
		if !ok {
			msg := fmt.Sprintf("config file %s: unknown key %q", path, k)
			if s := nearest(k, slices.Sorted(maps.Keys(byName))); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			return errors.New(msg)
		}
		n := doc[k]
		var vals []string
		switch {
		case n.Kind == yaml.SequenceNode && o.list:
			for _, item := range n.Content {
				if item.Kind != yaml.ScalarNode {
					return fmt.Errorf("config file %s: %s: line %d: want a list of strings", path, k, item.Line)
				}
				vals = append(vals, item.Value)
			}
		case n.Kind == yaml.ScalarNode:
			vals = splitList(o, n.Value)
		default:
			return fmt.Errorf("config file %s: %s: line %d: want a single value", path, k, n.Line)
		}
		if err := apply(o, vals); err != nil {
			return fmt.Errorf("config file %s: %s: %w", path, k, err)
		}
	}
	return nil
}

func printServeHelp(w io.Writer, opts []option) {
	fmt.Fprintln(w, "Usage: relayd serve [--config FILE] [flags]")
	fmt.Fprintln(w, "\nEvery flag is also an environment variable and a YAML key; flags beat env beat file.")
	fmt.Fprintf(w, "\n  --config FILE\n        YAML config file (env RELAYD_CONFIG)\n")
	for _, o := range opts {
		fmt.Fprintf(w, "  --%s\n        %s (env %s, default %q)\n", o.name, o.usage, envName(o.name), o.value.String())
	}
}

// Flag values over node.Config fields.

type stringValue string

func (v *stringValue) String() string     { return string(*v) }
func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }

type listValue []string

func (v *listValue) String() string     { return strings.Join(*v, ",") }
func (v *listValue) Set(s string) error { *v = append(*v, s); return nil }

type durationValue time.Duration

func (v *durationValue) String() string { return time.Duration(*v).String() }
func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q (want e.g. 30s, 5m, 1h)", s)
	}
	*v = durationValue(d)
	return nil
}

type intValue int

func (v *intValue) String() string { return strconv.Itoa(int(*v)) }
func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("invalid number %q", s)
	}
	*v = intValue(n)
	return nil
}

type boolValue bool

func (v *boolValue) String() string   { return strconv.FormatBool(bool(*v)) }
func (v *boolValue) IsBoolFlag() bool { return true }
func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("invalid boolean %q (want true or false)", s)
	}
	*v = boolValue(b)
	return nil
}
