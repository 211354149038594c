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

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/hops"
	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/priority"
	"github.com/relayd/relayd/pkg/ratelog"
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

	mu    sync.Mutex
	fills map[string]*fill // by fill.slot

	hits, misses, stale, revalidated, coalesced  atomic.Int64
	upstreamBytes, peerBytes, nfills, fillErrors atomic.Int64
	peerFills                                    atomic.Int64
	resumeRefused                                atomic.Int64
	lim                                          *ratelog.Limiter // resume refusals: one line per interval
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
	if cfg.ForwardBodyMax <= 0 {
		cfg.ForwardBodyMax = def.ForwardBodyMax
	}
	prefixes := make([]string, 0, len(cfg.IgnoreQuery))
	for _, p := range cfg.IgnoreQuery {
		prefixes = append(prefixes, strings.TrimPrefix(p, "/"))
	}
	cfg.IgnoreQuery = prefixes
	ctx, cancel := context.WithCancel(context.Background())
	return &Cache{
		cfg: cfg, store: st, up: up, expect: expect,
		log: log.With().Str("component", "proxycache").Logger(), clock: clk, lim: ratelog.New(clk, ratelog.DefaultEvery),
		ctx: ctx, cancel: cancel,
		fills: make(map[string]*fill), infos: hitInfos{m: map[string]*hitInfo{}},
	}
}

// SetPeers routes misses through the group (call before serving).
func (c *Cache) SetPeers(p Peers) { c.peers = p }

// Close cancels fills in flight and waits for them.
func (c *Cache) Close() {
	c.cancel()
	c.wg.Wait()
}

// ErrOnlyIfCached: the request said only-if-cached and nothing stored
// satisfies it (504, RFC 9111 §5.2.1.7).
var ErrOnlyIfCached = errors.New("proxycache: not in the cache (only-if-cached)")

// Get returns the object for key (path, then "?" and the raw query when
// there is one): from disk when the stored response satisfies the request
// (WithRequest), otherwise through the one fill or revalidation of key in
// flight. The caller closes it.
func (c *Cache) Get(ctx context.Context, key string) (*object.Object, error) {
	now := c.clock.Now()
	key = c.cacheKey(key)
	x, err := c.admit(key)
	if err != nil {
		return nil, err
	}
	rq := requestFrom(ctx)
	if x.listed {
		// What the signed catalog lists is immutable and verified: no
		// request directive makes it revalidate or bypass the store
		// (only-if-cached still keeps the request off the upstream).
		rq = request{onlyIfCached: rq.onlyIfCached}
	}
	var stale *store.Entry
	e, hi, ok, err := c.lookup(key, x, &rq, now)
	switch {
	case err == nil:
		if ok {
			if obj, err := c.serveStored(key, &e, hi, object.Hit); err == nil {
				c.hits.Add(1)
				return obj, nil
			}
			// The blob was evicted after the index read: a miss.
		} else if !x.listed && selects(hi, &rq) {
			// A listed key's other bytes are replaced by a plain fetch,
			// not revalidated.
			stale = &e
		}
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	if rq.onlyIfCached {
		return nil, fmt.Errorf("%w: %s", ErrOnlyIfCached, key)
	}
	obj, err := c.fetch(ctx, key, x, &rq, stale, rq.auth)
	if errors.Is(err, errOtherVariant) {
		// The fill this request joined answers with a variant its Vary
		// fields do not select: ask for its own.
		obj, err = c.fetch(ctx, key, x, &rq, nil, true)
	}
	return obj, err
}

// errOtherVariant: a coalesced fill's answer varies on request fields
// whose values differ in the request that joined it.
var errOtherVariant = errors.New("proxycache: another variant")

// fetch waits for the fill of key (joining or starting it; private: a
// fill of this request's own) and serves its answer.
func (c *Cache) fetch(ctx context.Context, key string, x expectation, rq *request, stale *store.Entry, private bool) (*object.Object, error) {
	f, hit, started, err := c.join(key, x, stale, rq, private, !isFromPeer(ctx), hops.From(ctx), priority.IsBackground(ctx))
	if err != nil {
		return nil, err
	}
	if hit != nil {
		c.hits.Add(1)
		return hit, nil
	}
	if !priority.IsBackground(ctx) {
		f.promote() // someone waits for it now: no longer background (a prefetch's)
	}
	if err := f.waitReady(ctx); err != nil {
		f.release()
		return nil, err
	}
	// The answer to the request that started the fill is its own, even
	// when it varies on everything (Vary: *): never asked again.
	if f.err == nil && !private && !started && !varyMatch(f.vary, rq.h) {
		f.release()
		return nil, errOtherVariant
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
		return c.serveStored(key, f.entry, nil, object.Revalidated)
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
// the returned fill; started says it is a new fill, of this request.
func (c *Cache) join(key string, x expectation, stale *store.Entry, rq *request, private, route bool, path []string, background bool) (f *fill, hit *object.Object, started bool, err error) {
	c.mu.Lock()
	for {
		cur, ok := c.fills[key]
		if !ok || (private && !cur.finished()) {
			break
		}
		if !cur.finished() {
			cur.addRef()
			c.coalesced.Add(1)
			c.mu.Unlock()
			return cur, nil, false, nil
		}
		// The fill is complete and being committed: once it is in the
		// store this request is an ordinary lookup (a hit, or a
		// revalidation for what may not be reused as is).
		ended := cur.ended
		c.mu.Unlock()
		<-ended
		c.mu.Lock()
	}
	defer c.mu.Unlock()
	if e, hi, ok, err := c.lookup(key, x, rq, c.clock.Now()); err == nil {
		if ok {
			if obj, err := c.serveStored(key, &e, hi, object.Hit); err == nil {
				return nil, obj, false, nil
			}
		} else if stale == nil && !x.listed && selects(hi, rq) {
			stale = &e // stored meanwhile, and stale now: revalidate it
		}
	}
	if len(c.fills) >= c.cfg.MaxFills {
		return nil, nil, false, fmt.Errorf("%w: %d fills in flight", ErrBusy, len(c.fills))
	}
	f = newFill(key, c.cfg.Sendfile)
	f.refs = 2 // the fill goroutine and the caller
	f.req, f.noStore, f.auth, f.staleKey = rq.h, rq.noStore, rq.auth, key
	if rq.storedAt != "" && stale != nil {
		f.staleKey = rq.storedAt // a variant stored beside key
	}
	if private {
		// Nobody joins it: its own slot, still counted in MaxFills.
		f.slot = fmt.Sprintf("%s\x00%p", key, f)
	}
	// A background request's fill (prefetch) is background WAN traffic
	// until a request that waits for it joins (promote).
	f.ctx = c.ctx
	if background {
		f.ctx = priority.Background(f.ctx)
	}
	f.ctx, f.promote = priority.Promotable(f.ctx)
	c.fills[f.slot] = f
	c.wg.Add(1)
	go c.runFill(f, x, stale, route, path)
	return f, nil, true, nil
}

// runFill is where a miss goes once it is the key's one fill. The owner
// relay or the upstream is asked (request, open); then one step decides
// what the answer becomes: a 304 to a revalidation refreshes the stale
// entry (revalidate); a 200 is admitted into a new blob (admitBody),
// streamed to the requesters as it arrives (stream, in fill.go) and kept
// once verified (commit); anything else fails every requester.
func (c *Cache) runFill(f *fill, x expectation, stale *store.Entry, route bool, path []string) {
	defer c.wg.Done()
	defer f.release()
	c.nfills.Add(1)
	// Detached from the requester (the fill serves everyone), but it
	// carries the groups the request crossed, for the loop guard.
	ctx := f.traceInterims(hops.With(f.ctx, path))
	requested := c.clock.Now()
	f.requested = requested
	resp, fromPeer, err := c.request(ctx, f, x, stale, route)
	if err != nil {
		c.failFill(f, fmt.Errorf("%w: %w", ErrUpstream, err))
		return
	}
	defer resp.Body.Close()
	received := c.clock.Now()
	if resp.StatusCode == http.StatusNotModified && stale != nil {
		c.revalidate(f, stale, resp.Header, requested, received)
		return
	}
	if resp.StatusCode >= 500 && stale != nil && mayServeStale(stale) {
		// The upstream fails: the stored copy is served stale instead.
		c.failFill(f, fmt.Errorf("%w: %s: status %d", ErrUpstream, f.key, resp.StatusCode))
		return
	}
	f.storeKey = f.key
	if !x.listed && resp.StatusCode != http.StatusNotModified {
		f.storeKey = c.storeKey(f, resp.Header)
	}
	if !x.listed && !f.auth { // a private answer does not replace the shared one
		f.replaces = c.supersede(f.storeKey)
	}
	expect, err := c.admitBody(f, x, stale, resp)
	if err != nil {
		c.failFill(f, err)
		return
	}
	if err := c.stream(ctx, f, x, resp, fromPeer); err != nil {
		c.breakFill(f, err)
		c.log.Warn().Err(err).Str("key", f.key).Msg("fill failed")
		return
	}
	c.commit(f, expect, resp.StatusCode, resp.Header, requested, received)
}

// revalidate ends a fill whose upstream answered 304 to the stale entry's
// validators: the stored bytes are still right; the entry gets the new
// freshness, in the store and for every requester.
func (c *Cache) revalidate(f *fill, stale *store.Entry, h http.Header, requested, received time.Time) {
	e := *stale
	e.Header = make(map[string]string, len(stale.Header))
	for k, v := range stale.Header {
		e.Header[k] = v
	}
	refresh(e.Header, h, received)
	e.Requested, e.Stored = requested, received
	if err := c.store.Update(f.staleKey, func(x *store.Entry) { x.Header, x.Requested, x.Stored = e.Header, e.Requested, e.Stored }); err != nil {
		c.log.Warn().Err(err).Str("key", f.key).Msg("store revalidated entry")
	}
	c.endFill(f)
	f.revalidated(&e)
}

// admitBody decides whether the upstream's answer becomes a new blob: a
// 200 of the listed size (any size for a plain key) gets a writer in the
// store, and the requesters are released to stream from it. It returns
// the digest the bytes must have (zero when unknown), or the error every
// requester gets; a 404 of a plain key is remembered.
func (c *Cache) admitBody(f *fill, x expectation, stale *store.Entry, resp *http.Response) (digest.Digest, error) {
	if err := c.refusal(f.key, x, stale, resp.StatusCode); err != nil {
		return digest.Digest{}, err
	}
	// The bytes must have the catalog's digest; without a catalog, the
	// digest a relayd upstream sends as its ETag.
	expect, size := x.digest, resp.ContentLength
	if x.listed {
		if size >= 0 && size != x.size {
			// Not the listed object (an error page, another version):
			// refused before a byte is stored or sent.
			return expect, fmt.Errorf("%w: %s: the upstream sends %d bytes, the catalog lists %d", ErrDigestMismatch, f.key, size, x.size)
		}
		size = x.size
	} else {
		expect, _ = digest.FromETag(resp.Header.Get("Etag"))
	}
	if size < 0 && noBody(resp.StatusCode) {
		size = 0
	}
	w, err := c.store.Create(size)
	if err != nil {
		if errors.Is(err, store.ErrFull) {
			err = fmt.Errorf("%w: %w", ErrBusy, err)
		}
		return expect, err
	}
	// The ETag is the origin's, as it sent it; a listed object's is its
	// digest, as on every hit. (With a strong one, a relay streaming this
	// miss from us can resume from the upstream if we die mid-transfer.)
	etag := resp.Header.Get("Etag")
	h := responseHeader(resp.Header, c.clock.Now())
	if x.listed {
		etag = expect.ETag()
		delete(h, "Etag")
	}
	// Written before start releases the requesters, who read it.
	now := c.clock.Now()
	f.age = strconv.FormatInt(int64(age(&store.Entry{Requested: f.requested, Stored: now,
		Header: map[string]string{"Age": resp.Header.Get("Age"), "Date": h.Get("Date")}}, now)/time.Second), 10)
	f.start(w, size, etag, resp.StatusCode, h)
	return expect, nil
}

// refusal is the error every requester gets for an answer that is not
// passed through: for a key the catalog lists, anything but a 200 (a 404
// or 410 of a listed key means the upstream is behind or broken).
// Statuses of plain keys reach the client as sent, with their bodies; a
// 304 answers only the cache's own conditional request.
func (c *Cache) refusal(key string, x expectation, stale *store.Entry, status int) error {
	switch {
	case status == http.StatusOK:
		return nil
	case x.listed:
		return fmt.Errorf("%w: %s: status %d for an object the catalog lists", ErrUpstream, key, status)
	case reserved(key) && (status == http.StatusNotFound || status == http.StatusGone):
		// The relay's own documents (the catalog, TUF metadata) are
		// read by the relay, which wants an error, not a page.
		if stale != nil {
			_ = c.store.Delete(key)
		}
		return fmt.Errorf("%w: %s", ErrNotFound, key)
	case reserved(key):
		return fmt.Errorf("%w: %s: status %d", ErrUpstream, key, status)
	case status == http.StatusNotModified:
		return fmt.Errorf("%w: %s: 304 to a request without validators", ErrUpstream, key)
	case (status == http.StatusNotFound || status == http.StatusGone) && stale != nil:
		_ = c.store.Delete(key) // gone upstream: gone here
		c.dropVariants(key)
	}
	return nil
}

// commit ends a fill whose every byte is in. Bytes of another digest than
// expected fail every requester; verified ones are released at once, then
// kept (unless the answer's headers forbid it) and held open (f.pin)
// while requesters still stream them from the temp file.
func (c *Cache) commit(f *fill, expect digest.Digest, status int, h http.Header, requested, received time.Time) {
	if got := f.w.Digest(); !expect.IsZero() && got != expect {
		err := fmt.Errorf("%w: %s: got %s, want %s", ErrDigestMismatch, f.key, got, expect)
		c.log.Error().Err(err).Str("key", f.key).Msg("upstream sent wrong bytes; discarded")
		c.breakFill(f, err)
		return
	}
	// Complete and verified: the requesters get their last byte now.
	// Making the object durable (fsync, rename, index) must not hold them
	// up; until endFill, later requests join this finished fill.
	f.finish(nil)
	defer c.endFill(f)
	entry := store.Entry{Requested: requested, Stored: received, Header: keepHeaders(h, status, received)}
	// varyKeep: the request fields it varies on fit the bounds of a variant.
	if f.noStore || !storable(status, h, f.auth) || !varyKeep(entry.Header, f.req) {
		// Streamed to the requesters that were waiting, not kept; a
		// response it replaces is not served again either.
		f.w.Abort()
		if f.replaces && !f.auth {
			_ = c.store.Delete(f.storeKey)
		}
		return
	}
	if f.storeKey != f.key {
		c.boundVariants(f.key, f.storeKey)
	}
	stored, err := f.w.Commit(f.storeKey, entry, expect)
	if err != nil {
		c.log.Warn().Err(err).Str("key", f.key).Msg("object served but not cached: commit failed")
		return
	}
	if r, perr := c.store.OpenBlob(stored.Digest); perr == nil {
		f.pin = r
	}
}

// failFill ends a fill that failed before its first byte: every requester
// gets err.
func (c *Cache) failFill(f *fill, err error) {
	c.endFill(f)
	c.fillErrors.Add(1)
	f.fail(err)
}

// breakFill ends a fill that failed after its first byte: the bytes are
// thrown away and every requester's body ends with err.
func (c *Cache) breakFill(f *fill, err error) {
	c.forget(f.key) // the stored response, if any, is no longer superseded
	f.w.Abort()
	c.endFill(f)
	f.finish(err)
	c.fillErrors.Add(1)
}

// endFill takes f out of the coalescing map: later requests read the
// store (after a commit) or start a new fill (after a failure).
func (c *Cache) endFill(f *fill) {
	c.mu.Lock()
	if c.fills[f.slot] == f {
		delete(c.fills, f.slot)
	}
	c.mu.Unlock()
	f.endOnce.Do(func() { close(f.ended) })
}
