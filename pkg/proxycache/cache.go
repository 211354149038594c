package proxycache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/hops"
	"github.com/relayd/relayd/pkg/httprange"
	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/store"
)

// Sentinel errors; the content handler maps them to statuses.
var (
	// ErrNotFound: the upstream has no such object (404/410).
	ErrNotFound = errors.New("proxycache: not found upstream")
	// ErrUpstream: the upstream failed or answered with an error status.
	ErrUpstream = errors.New("proxycache: upstream failed")
	// ErrBusy: too many fills in flight, or no room in the quota because
	// every object is in use; the client should retry shortly.
	ErrBusy = errors.New("proxycache: busy")
	// ErrDigestMismatch: the upstream's bytes do not match the digest
	// they must have.
	ErrDigestMismatch = errors.New("proxycache: digest mismatch")
	// ErrCatalogUnavailable: the cache verifies against a signed catalog
	// and none is loaded yet; nothing is served or stored until one is.
	ErrCatalogUnavailable = errors.New("proxycache: no verified catalog yet")
	// ErrNotInCatalog: the verified catalog does not list the key and
	// Config.AllowUnlisted is off.
	ErrNotInCatalog = errors.New("proxycache: not in the catalog")
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
	// NegativeTTL is how long a 404 from the upstream is remembered.
	// Default 10s; 0 keeps the default, negative disables.
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
	// AllowUnlisted, with an Expecter (a relay with --pubkey), lets keys
	// the verified catalog does not list through as a plain RFC 9111
	// cache would. Default false: they are refused (ErrNotInCatalog), so
	// that such a relay serves nothing the catalog does not vouch for.
	// Without an Expecter every key is plain and this has no effect.
	AllowUnlisted bool
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{HeuristicFraction: 0.1, HeuristicMax: 24 * time.Hour, NegativeTTL: 10 * time.Second, MaxFills: 256, Sendfile: true}
}

// Upstream fetches objects. hierarchy.Client implements it.
type Upstream interface {
	// Fetch GETs key with the extra request headers; the caller closes
	// the response body. Statuses >= 500 are returned as errors.
	Fetch(ctx context.Context, key string, hdr http.Header) (*http.Response, error)
}

// Store keeps objects on disk. store.Store implements it.
type Store interface {
	// Get returns the entry for key or store.ErrNotFound.
	Get(key string) (store.Entry, error)
	// Update changes an entry's metadata in place.
	Update(key string, fn func(*store.Entry)) error
	// Delete removes key.
	Delete(key string) error
	// OpenBlob opens a blob for reading, protecting it from eviction.
	OpenBlob(d digest.Digest) (*store.Reader, error)
	// Create starts writing a new object of size bytes (-1 if unknown).
	Create(size int64) (*store.Writer, error)
}

// Expecter knows what an object must be: the signed catalog. A cache
// with an Expecter fails closed: until a verified catalog is loaded it
// serves and stores nothing (ErrCatalogUnavailable), and then only what
// the catalog lists, unless Config.AllowUnlisted.
type Expecter interface {
	// Expect returns the catalog's entry for key (its digest and size)
	// and the generation of that catalog; ok is false for keys it does
	// not list, and generation is 0 when no verified catalog is loaded
	// (generations start at 1). Fills of listed keys ask for that
	// generation (catalog.GenerationHeader), so a parent that has not
	// completed it answers 503, not an old object or a 404.
	Expect(key string) (o catalog.Object, generation uint64, ok bool)
}

// expectation is what the catalog says of one key. A request looks it up
// once and hands it down, so everything it decides rests on one answer.
type expectation struct {
	listed     bool
	digest     digest.Digest
	size       int64
	generation uint64
}

// admit asks the catalog about key, before anything is looked up or
// fetched for it: a listed key is verified against its entry; without a
// loaded catalog nothing is admitted, and an unlisted key only when
// AllowUnlisted (then as a plain key). Without an Expecter every key is
// plain. The catalog file and the relay's reserved paths are not objects
// the catalog could list, and pass as plain keys.
func (c *Cache) admit(key string) (expectation, error) {
	if c.expect == nil {
		return expectation{}, nil
	}
	o, g, ok := c.expect.Expect(key)
	switch {
	case ok:
		return expectation{listed: true, digest: o.Digest, size: o.Size, generation: g}, nil
	case key == catalog.File || key == "-" || strings.HasPrefix(key, "-/"):
		return expectation{}, nil
	case g == 0:
		return expectation{}, fmt.Errorf("%w: %s is refused until one is loaded", ErrCatalogUnavailable, key)
	case !c.cfg.AllowUnlisted:
		return expectation{}, fmt.Errorf("%w: %s is not listed in generation %d", ErrNotInCatalog, key, g)
	}
	return expectation{}, nil
}

// ask marks a request for a listed key with the generation it comes from.
func (x expectation) ask(h http.Header) {
	if x.listed && x.generation > 0 {
		h.Set(catalog.GenerationHeader, strconv.FormatUint(x.generation, 10))
	}
}

// Peers is the relay group, as the cache sees it. A miss is routed to the
// key's owner so that only the owner fetches from upstream.
type Peers interface {
	// Owner returns the content base URL of the member that owns key;
	// ok is false when this relay owns it (or it is alone).
	Owner(key string) (base string, ok bool)
	// Fetch GETs key from the member at base, marked as a peer request
	// so that it is never forwarded again; the caller closes the body.
	Fetch(ctx context.Context, base, key string, hdr http.Header) (*http.Response, error)
}

type peerKey struct{}

// FromPeer marks ctx as serving a peer's request: a fill it starts goes
// upstream, never to another member.
func FromPeer(ctx context.Context) context.Context { return context.WithValue(ctx, peerKey{}, true) }

func isFromPeer(ctx context.Context) bool { v, _ := ctx.Value(peerKey{}).(bool); return v }

// Stats counts what the cache did since it started.
type Stats struct {
	Hits        int64 `json:"hits"`
	Misses      int64 `json:"misses"`
	Stale       int64 `json:"stale"`
	Revalidated int64 `json:"revalidated"`
	Coalesced   int64 `json:"coalesced"`
	PeerFills   int64 `json:"peer_fills"`
	// UpstreamBytes came from the upstream (the WAN); PeerBytes from other
	// relays of the group (the LAN).
	UpstreamBytes int64 `json:"upstream_bytes"`
	PeerBytes     int64 `json:"peer_bytes"`
	Fills         int64 `json:"fills"`
	FillErrors    int64 `json:"fill_errors"`
	// ResumesRefused: broken peer transfers whose resume from upstream was
	// not the same representation (not spliced: the fill failed).
	ResumesRefused int64 `json:"resumes_refused"`
}

// Cache is the on-demand cache. It is safe for concurrent use.
type Cache struct {
	cfg    Config
	store  Store
	up     Upstream
	expect Expecter // may be nil
	peers  Peers    // may be nil
	log    zerolog.Logger
	clock  clock.Clock

	ctx    context.Context // fills run detached from any one request
	cancel context.CancelFunc
	wg     sync.WaitGroup

	infos hitInfos

	mu       sync.Mutex
	fills    map[string]*fill
	negative map[string]time.Time

	hits, misses, stale, revalidated, coalesced  atomic.Int64
	upstreamBytes, peerBytes, nfills, fillErrors atomic.Int64
	peerFills                                    atomic.Int64
	resumeRefused                                httprange.Refusals
}

// New builds a cache over st, filling from up. expect may be nil.
func New(cfg Config, st Store, up Upstream, expect Expecter, log zerolog.Logger, clk clock.Clock) *Cache {
	def := DefaultConfig()
	if cfg.HeuristicFraction <= 0 {
		cfg.HeuristicFraction = def.HeuristicFraction
	}
	if cfg.HeuristicMax <= 0 {
		cfg.HeuristicMax = def.HeuristicMax
	}
	if cfg.NegativeTTL == 0 {
		cfg.NegativeTTL = def.NegativeTTL
	}
	if cfg.MaxFills <= 0 {
		cfg.MaxFills = def.MaxFills
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Cache{
		cfg: cfg, store: st, up: up, expect: expect,
		log: log.With().Str("component", "proxycache").Logger(), clock: clk,
		ctx: ctx, cancel: cancel,
		fills: make(map[string]*fill), negative: make(map[string]time.Time), infos: hitInfos{m: map[string]*hitInfo{}},
	}
}

// SetPeers routes misses through the group (call before serving).
func (c *Cache) SetPeers(p Peers) { c.peers = p }

// Close cancels fills in flight and waits for them.
func (c *Cache) Close() {
	c.cancel()
	c.wg.Wait()
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	return Stats{
		Hits: c.hits.Load(), Misses: c.misses.Load(), Stale: c.stale.Load(),
		Revalidated: c.revalidated.Load(), Coalesced: c.coalesced.Load(),
		PeerFills: c.peerFills.Load(), UpstreamBytes: c.upstreamBytes.Load(), PeerBytes: c.peerBytes.Load(), Fills: c.nfills.Load(), FillErrors: c.fillErrors.Load(),
		ResumesRefused: c.resumeRefused.Load(),
	}
}

// Get returns the object for key: from disk when fresh, otherwise through
// the one fill or revalidation of key in flight. The caller closes it.
func (c *Cache) Get(ctx context.Context, key string) (*object.Object, error) {
	now := c.clock.Now()
	x, err := c.admit(key)
	if err != nil {
		return nil, err
	}
	var stale *store.Entry
	e, err := c.store.Get(key)
	var hi *hitInfo
	ok := false
	if err == nil {
		hi, ok = c.usable(key, &e, x, now)
	}
	switch {
	case ok:
		if obj, err := c.serveStored(key, &e, hi, object.Hit); err == nil {
			c.hits.Add(1)
			return obj, nil
		}
		// The blob was evicted after the index read: a miss.
	case err == nil && !x.listed:
		// A listed key's other bytes are replaced by a plain fetch, not
		// revalidated.
		stale = &e
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	if stale == nil && c.isNegative(key, now) {
		return nil, fmt.Errorf("%w: %s (remembered)", ErrNotFound, key)
	}
	f, hit, err := c.join(key, x, stale, !isFromPeer(ctx), hops.From(ctx))
	if err != nil {
		return nil, err
	}
	if hit != nil {
		c.hits.Add(1)
		return hit, nil
	}
	select {
	case <-f.ready:
	case <-ctx.Done():
		f.release()
		return nil, ctx.Err()
	}
	switch {
	case f.err != nil:
		f.release()
		if stale == nil { // stored while this request waited
			if e, err := c.store.Get(key); err == nil && !x.listed {
				stale = &e
			}
		}
		if stale != nil && mayServeStale(stale) && !errors.Is(f.err, ErrNotFound) {
			if obj, err := c.serveStored(key, stale, nil, object.Stale); err == nil {
				c.stale.Add(1)
				c.log.Warn().Err(f.err).Str("key", key).Msg("upstream failed; serving stale")
				return obj, nil
			}
		}
		return nil, f.err
	case f.entry != nil: // revalidated: the stored bytes are still right
		f.release()
		c.revalidated.Add(1)
		return c.serveStored(key, f.entry, nil, object.Hit)
	}
	c.misses.Add(1)
	obj := f.object()
	// A part of a listed object is sent only once the whole is verified:
	// a range ends before the last byte, which is all that holding back
	// protects, so without this a wrong object's bytes would go out with
	// 206. Full-body readers still stream as the bytes arrive.
	obj.VerifiedRanges = x.listed
	return obj, nil
}

// join is the coalescing point: it returns the fill of key in flight, or
// starts one. It re-checks the index first, since a fill may have
// committed key since the caller looked. The caller owns one reference to
// the returned fill.
func (c *Cache) join(key string, x expectation, stale *store.Entry, route bool, path []string) (*fill, *object.Object, error) {
	c.mu.Lock()
	for {
		f, ok := c.fills[key]
		if !ok {
			break
		}
		if !f.finished() {
			f.addRef()
			c.coalesced.Add(1)
			c.mu.Unlock()
			return f, nil, nil
		}
		// The fill is complete and being committed: once it is in the
		// store this request is an ordinary lookup (a hit, or a
		// revalidation for what may not be reused as is).
		ended := f.ended
		c.mu.Unlock()
		<-ended
		c.mu.Lock()
	}
	defer c.mu.Unlock()
	if e, err := c.store.Get(key); err == nil {
		if hi, ok := c.usable(key, &e, x, c.clock.Now()); ok {
			if obj, err := c.serveStored(key, &e, hi, object.Hit); err == nil {
				return nil, obj, nil
			}
		} else if stale == nil && !x.listed {
			stale = &e // stored meanwhile, and stale now: revalidate it
		}
	}
	if len(c.fills) >= c.cfg.MaxFills {
		return nil, nil, fmt.Errorf("%w: %d fills in flight", ErrBusy, len(c.fills))
	}
	f := newFill(c, key)
	f.refs = 2 // the fill goroutine and the caller
	c.fills[key] = f
	c.wg.Add(1)
	go c.runFill(f, x, stale, route, path)
	return f, nil, nil
}

// usable reports whether a stored entry may be served without asking the
// upstream: an object the signed catalog lists is immutable and usable
// exactly when its bytes are the listed ones; anything else when fresh.
// It returns the entry's hit template, which serving it needs too.
func (c *Cache) usable(key string, e *store.Entry, x expectation, now time.Time) (*hitInfo, bool) {
	hi := c.info(key, e)
	if x.listed {
		return hi, e.Digest == x.digest
	}
	return hi, hi.lifetime > hi.age(now)
}

// endFill takes f out of the coalescing map: later requests read the
// store (after a commit) or start a new fill (after a failure).
func (c *Cache) endFill(f *fill) {
	c.mu.Lock()
	if c.fills[f.key] == f {
		delete(c.fills, f.key)
	}
	c.mu.Unlock()
	f.endOnce.Do(func() { close(f.ended) })
}

// serveStored opens the blob of a stored entry as an object; hi is the
// entry's hit template, nil to look it up.
func (c *Cache) serveStored(key string, e *store.Entry, hi *hitInfo, result string) (*object.Object, error) {
	r, err := c.store.OpenBlob(e.Digest)
	if err != nil {
		return nil, err
	}
	if hi == nil {
		hi = c.info(key, e)
	}
	return &object.Object{
		Key: key, Size: r.Size, ETag: hi.etag, LastModified: hi.lastModified, Header: hi.header,
		Age: hi.ageHeader(c.clock.Now()), Cache: result, Body: r.Body(c.cfg.Sendfile),
	}, nil
}

func (c *Cache) isNegative(key string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.negative[key]
	if ok && now.After(until) {
		delete(c.negative, key)
		return false
	}
	return ok
}

// maxNegative bounds the negative cache; a flood of distinct 404s must not
// grow memory without limit.
const maxNegative = 10000

func (c *Cache) setNegative(key string) {
	if c.cfg.NegativeTTL < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.negative) >= maxNegative {
		for k := range c.negative { // drop an arbitrary one
			delete(c.negative, k)
			break
		}
	}
	c.negative[key] = c.clock.Now().Add(c.cfg.NegativeTTL)
}
