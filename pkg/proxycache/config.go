package proxycache

// What the cache is told: its Config, and the Stats it counts.

import (
	"time"

	"github.com/relayd/relayd/pkg/admindoc"
)

// Config is the cache's behaviour. The quota lives in store.Config.
type Config struct {
	// DefaultTTL, when > 0, is the freshness lifetime of responses that
	// carry no explicit expiry (Cache-Control max-age/s-maxage or
	// Expires), replacing the Last-Modified heuristic. Default 0 (off).
	DefaultTTL time.Duration
	// HeuristicFraction of the time since Last-Modified is the heuristic
	// freshness lifetime (RFC 9111 §4.2.2). Default 0.1.
	HeuristicFraction float64
	// HeuristicMax caps the heuristic lifetime. Default 24h.
	HeuristicMax time.Duration
	// NegativeTTL is the heuristic freshness of a 404 or 410 from the
	// upstream that carries neither explicit freshness nor Last-Modified:
	// it is served, with its body, for that long before the upstream is
	// asked again. Default 10s; 0 keeps the default, negative disables.
	NegativeTTL time.Duration
	// MaxFills bounds upstream fills in flight; beyond it new misses get
	// ErrBusy (503 with Retry-After). Default 256.
	MaxFills int
	// Sendfile serves hits with sendfile(2). Default true: on a real NIC
	// it saves a copy and CPU; on loopback either can win (docs/benchmarks.md).
	Sendfile bool
	// ObserveFill, if set, is told how long each fill waited for its
	// upstream's (or owner's) response headers (for a latency histogram).
	ObserveFill func(time.Duration)
	// AllowUnlisted, with an Expecter (a relay with --root), lets keys
	// the verified catalog does not list through as a plain RFC 9111
	// cache would. Default false: they are refused (ErrNotInCatalog), so
	// that such a relay serves nothing the catalog does not vouch for.
	// Without an Expecter every key is plain and this has no effect.
	AllowUnlisted bool
	// IgnoreQuery lists key prefixes (paths without a leading slash)
	// whose query string is dropped, from the cache key and the upstream
	// request alike: cache-busting parameters on a package tree. Default
	// none: the query is part of the key.
	IgnoreQuery []string
	// ForwardMethods passes requests of other methods than GET and HEAD
	// (POST, PUT, PATCH, DELETE, OPTIONS, unknown ones) to the upstream,
	// never stored, and invalidates what they change (Forward). It has no
	// effect on a cache that verifies against a signed catalog. Default
	// false: they get 405.
	ForwardMethods bool
	// ForwardBodyMax bounds the request body of a forwarded request, in
	// bytes; a longer one gets 413. Default 1 MiB.
	ForwardBodyMax int64
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{HeuristicFraction: 0.1, HeuristicMax: 24 * time.Hour, NegativeTTL: 10 * time.Second, MaxFills: 256, Sendfile: true,
		ForwardBodyMax: 1 << 20}
}

// Stats counts what the cache did since it started; the document
// (/v1/status "cache") lives in admindoc.
type Stats = admindoc.CacheCounts

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	return Stats{
		Hits: c.hits.Load(), Misses: c.misses.Load(), Stale: c.stale.Load(),
		Revalidated: c.revalidated.Load(), Coalesced: c.coalesced.Load(),
		PeerFills: c.peerFills.Load(), UpstreamBytes: c.upstreamBytes.Load(), PeerBytes: c.peerBytes.Load(), Fills: c.nfills.Load(), FillErrors: c.fillErrors.Load(),
		ResumesRefused: c.resumeRefused.Load(),
	}
}
