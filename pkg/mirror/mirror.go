package mirror

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/singleflight"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/glob"
	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/ratelog"
	"github.com/relayd/relayd/pkg/store"
	"github.com/relayd/relayd/pkg/tufclient"
)

// Sentinel errors.
var (
	// ErrNotFound: the live generation has no such (selected) object.
	ErrNotFound = errors.New("mirror: not in the catalog")
	// ErrNoCatalog: no generation is live yet.
	ErrNoCatalog = errors.New("mirror: no complete generation yet")
	// ErrUpstreamNoCatalog: the upstream serves no TUF metadata (a plain
	// tree, or a broken parent): nothing verifies, so nothing is served.
	ErrUpstreamNoCatalog = errors.New("mirror: upstream has no TUF metadata")
	// errClosed: the mirror is closed; it downloads nothing more.
	errClosed = errors.New("mirror: closed")
)

// Config is the mirror's behaviour.
type Config struct {
	// Interval between polls of the upstream's timestamp. Default 5m.
	Interval time.Duration
	// Workers download objects in parallel. Default 4.
	Workers int
	// Include selects the catalog paths mirrored ("security/**"); empty
	// means all of them.
	Include []string
	// Root is the trusted root the TUF client starts from (1.root.json of
	// the tree's repository). Required.
	Root []byte
	// Dir is where the TUF client keeps the metadata it verified
	// (DATA/tuf). Required.
	Dir string
	// Serve says whether the mirror serves its objects (mirror mode, or
	// the mirrored kinds of a proxy); false only follows the catalog.
	Serve bool
	// Sendfile selects how objects are copied (see object.FileBody).
	Sendfile bool
	// Settle delays the first sync after start, so that relays of a
	// group started together see each other first and split the
	// generation instead of each fetching all of it. Default 0; the node
	// sets it for mirrors in a group.
	Settle time.Duration
	// Formed, if set, says whether the group this relay was told to join
	// has formed (every configured member seen). The first sync then
	// waits past Settle until it has, at most MaxSettle: a mirror that
	// syncs before it sees its group fetches from the upstream what
	// another member owns, and the object crosses the WAN twice.
	Formed func() bool
	// OnLive, if set, is called after a new generation went live, and
	// after a new timestamp of the live generation was verified (to
	// announce it to children and agents). It must not block.
	OnLive func(*Live)
	// OnChanged, if set, is called in a goroutine of its own after a new
	// generation went live, with the paths whose object changed: their
	// earlier versions are what children ask deltas against (issue 16).
	OnChanged func([]Change)
	// OnPolled, if set, is called after each sync, done or failed (a
	// poll of the upstream's timestamp): the node looks at the rollout
	// gates then. It must not block.
	OnPolled func()
	// Keep, if set, gives the generations older than the live one whose
	// objects must stay on disk and servable at their consistent names
	// (held.go): those a ring of the rollout gates is open at. Called
	// when a generation goes live and on Release.
	Keep func() []uint64
	// CatalogMax caps a metadata file whose length nothing signed gives
	// (timestamp.json, root versions), in bytes (tufclient
	// Options.MaxBytes). Default catalog.DefaultMaxBytes.
	CatalogMax int64
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Interval: 5 * time.Minute, Workers: 4, Serve: true, Sendfile: true, CatalogMax: catalog.DefaultMaxBytes}
}

// Upstream fetches objects from the parent. hierarchy.Client implements it.
type Upstream interface {
	// Fetch GETs key with extra request headers; the caller closes the body.
	Fetch(ctx context.Context, key string, hdr http.Header) (*http.Response, error)
}

// Store holds blobs and the mirror's state. store.Store implements it.
type Store interface {
	// Has reports whether a blob is stored.
	Has(d digest.Digest) bool
	// OpenBlob opens a blob for reading.
	OpenBlob(d digest.Digest) (*store.Reader, error)
	// Resume opens (or creates) the partial file for name.
	Resume(name string, size int64) (*store.Writer, error)
	// Get returns the entry of key.
	Get(key string) (store.Entry, error)
	// PinBlobs points prefix+hex at each stored blob d, exempt from eviction.
	PinBlobs(prefix string, ds []digest.Digest) error
	// Delete removes key.
	Delete(key string) error
	// Update changes an entry's metadata in place (collect unpins).
	Update(key string, fn func(*store.Entry)) error
	// List calls fn for each key with the prefix.
	List(prefix string, fn func(key string, e store.Entry) bool) error
	// GetMeta and PutMeta keep small named values.
	GetMeta(name string) ([]byte, error)
	PutMeta(name string, value []byte) error
}

// blobKey is the store key that keeps a mirrored blob: under the reserved
// prefix, so it can never collide with a content path.
func blobKey(d digest.Digest) string { return keyPrefix + d.Hex() }

const (
	keyPrefix = "-/mirror/"
	// metaLive keeps the live generation (live.go): the mirror serves it
	// after a restart, whatever its upstream and its expiry.
	metaLive = "mirror.live"
)

// Mirror is one relay's mirror. It is safe for concurrent use.
type Mirror struct {
	cfg    Config
	filter *glob.Filter
	store  Store
	up     Upstream
	meta   tufclient.Fetcher // the upstream's TUF metadata
	tuf    *tufclient.Client
	log    zerolog.Logger
	clock  clock.Clock

	trigger chan struct{}
	syncMu  sync.Mutex // one sync at a time
	tufMu   sync.Mutex // one metadata update at a time
	peers   Peers      // may be nil
	// flight runs one download per digest (and one catalog fetch for
	// peers) at a time, on the mirror's lifetime: ctx, ended by Close.
	flight   singleflight.Group
	ctx      context.Context
	cancel   context.CancelFunc
	workMu   sync.Mutex
	work     sync.WaitGroup // downloads in flight
	closed   bool
	rejected atomic.Int64 // metadata refused (see failures)
	failures failures     // metadata updates that failed, by reason
	// upstreamBytes and peerBytes count object bytes received, since
	// start, from the upstream (the WAN) and from group peers (the LAN).
	upstreamBytes, peerBytes atomic.Int64
	// resumeRefused counts answers that could not continue a partial file.
	resumeRefused atomic.Int64
	lim           *ratelog.Limiter // resume refusals: one line per interval

	mu       sync.RWMutex
	cur      *syncState                  // the sync in flight
	live     *Live                       // the complete generation served
	want     uint64                      // a generation announced by the parent, not live yet
	held     map[uint64]*catalog.Catalog // older generations kept (held.go)
	progress Progress
}

// New builds a mirror and restores the live generation from the store.
// up fetches objects, meta the TUF metadata (hierarchy.Metadata).
func New(cfg Config, st Store, up Upstream, meta tufclient.Fetcher, log zerolog.Logger, clk clock.Clock) (*Mirror, error) {
	def := DefaultConfig()
	if cfg.Interval <= 0 {
		cfg.Interval = def.Interval
	}
	if cfg.Workers <= 0 {
		cfg.Workers = def.Workers
	}
	if cfg.CatalogMax <= 0 {
		cfg.CatalogMax = def.CatalogMax
	}
	if len(cfg.Root) == 0 || cfg.Dir == "" {
		return nil, errors.New("mirror: a trusted root (--root) and a metadata directory are required")
	}
	f, err := glob.New(cfg.Include)
	if err != nil {
		return nil, err
	}
	m := &Mirror{cfg: cfg, filter: f, store: st, up: up, meta: fetcher{meta}, log: log.With().Str("component", "mirror").Logger(),
		clock: clk, lim: ratelog.New(clk, ratelog.DefaultEvery), trigger: make(chan struct{}, 1)}
	m.tuf, err = tufclient.New(cfg.Root, tufclient.Options{Dir: cfg.Dir, Now: clk.Now, MaxBytes: cfg.CatalogMax,
		Log: m.log.With().Str("component", "tufclient").Logger()})
	if err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.progress.State = StateIdle
	m.restore()
	m.restoreHeld()
	return m, nil
}

// Trigger asks for a sync now (POST /v1/sync, or a push from the parent).
func (m *Mirror) Trigger() {
	select {
	case m.trigger <- struct{}{}:
	default: // one already pending
	}
}

// Want asks for a sync now because the parent announced generation g:
// until g is live, the mirror asks only parents that have it.
func (m *Mirror) Want(g uint64) {
	m.mu.Lock()
	if m.live == nil || g > m.live.Catalog.Generation {
		m.want = max(m.want, g)
	}
	m.mu.Unlock()
	m.Trigger()
}

// Wanted returns the generation the parent announced that is not live
// here yet, 0 if none: the metadata is asked for it
// (hierarchy.Metadata), so parents that have not completed it are passed
// over.
func (m *Mirror) Wanted() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.want
}

// Behind reports whether a request that works from generation g must be
// refused because this mirror has not made g live yet; it then starts a
// sync, so the relay catches up.
func (m *Mirror) Behind(g uint64) bool {
	if live := m.Live(); live != nil && live.Catalog.Generation >= g {
		return false
	}
	m.Want(g)
	return true
}

// MaxSettle bounds the first sync's wait for the group to form
// (Config.Formed); settlePoll is how often it looks.
const (
	MaxSettle  = 10 * time.Second
	settlePoll = 100 * time.Millisecond
)

// Run syncs at once, then every Interval or when triggered, until ctx ends;
// then it closes the mirror. A failed sync is retried sooner, with a
// backoff from 1 s up to Interval.
func (m *Mirror) Run(ctx context.Context) error {
	defer m.Close()
	start := time.Now()
	t := time.NewTimer(m.cfg.Settle)
	defer t.Stop()
	backoff := time.Duration(0)
	settled := m.cfg.Settle <= 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if !settled && m.cfg.Formed != nil && !m.cfg.Formed() && time.Since(start) < MaxSettle {
				t.Reset(settlePoll)
				continue
			}
		case <-m.trigger:
			if !settled {
				continue // the first sync waits for the group to form; the timer runs
			}
		}
		if !settled && m.cfg.Formed != nil && !m.cfg.Formed() {
			m.log.Warn().Dur("waited", time.Since(start)).Msg("group not formed: first sync without every member")
		}
		settled = true
		next := m.cfg.Interval
		err := m.Sync(ctx)
		if m.cfg.OnPolled != nil {
			m.cfg.OnPolled()
		}
		if err != nil && ctx.Err() == nil {
			// No catalog (every upstream answered 404) is a failure
			// like any other: without one nothing verifies, so nothing
			// is served or stored until one is found.
			m.log.Warn().Err(err).Msg("sync failed; the live generation stays")
			backoff = min(max(2*backoff, time.Second), m.cfg.Interval)
			next = backoff
		} else {
			backoff = 0
		}
		t.Reset(next) // since Go 1.23 no stale tick survives a Reset
	}
}

// Close cancels the downloads in flight and waits for them to release
// their files. Safe to call more than once; Run does it when it returns.
func (m *Mirror) Close() {
	m.cancel()
	m.workMu.Lock()
	m.closed = true
	m.workMu.Unlock()
	m.work.Wait()
}

// hold counts one more download in flight; false once the mirror is
// closed. The caller calls m.work.Done when the download ends.
func (m *Mirror) hold() bool {
	m.workMu.Lock()
	defer m.workMu.Unlock()
	if m.closed {
		return false
	}
	m.work.Add(1)
	return true
}

// Live returns the complete generation served, or nil.
func (m *Mirror) Live() *Live {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.live
}

// Ready reports whether a generation is live.
func (m *Mirror) Ready() error {
	if m.Live() == nil {
		return ErrNoCatalog
	}
	return nil
}

// Expect gives the live generation's entry for key and that generation
// (for the proxy cache to verify fills and skip revalidation); the
// generation is 0 while none is live, and the cache then refuses every
// object (proxycache.Expecter). A consistent name (dir/<sha256>.name) of
// a version the live or a held generation lists is listed too (Version).
func (m *Mirror) Expect(key string) (catalog.Object, uint64, bool) {
	l := m.Live()
	if l == nil {
		return catalog.Object{}, 0, false
	}
	o, ok := l.Catalog.Lookup(key)
	if !ok {
		if v, _, vok := m.Version(key); vok {
			return v, l.Catalog.Generation, true
		}
	}
	return o, l.Catalog.Generation, ok
}

// Covers reports whether key is one the mirror serves from disk.
func (m *Mirror) Covers(key string) bool {
	_, _, ok := m.covered(key)
	return ok
}

// covered looks key up in the live generation when the mirror serves it.
func (m *Mirror) covered(key string) (catalog.Object, *catalog.Catalog, bool) {
	if !m.cfg.Serve || !m.filter.Match(key) {
		return catalog.Object{}, nil, false
	}
	l := m.Live()
	if l == nil {
		return catalog.Object{}, nil, false
	}
	o, ok := l.Catalog.Lookup(key)
	return o, l.Catalog, ok
}

// Get serves key from the live generation.
func (m *Mirror) Get(_ context.Context, key string) (*object.Object, error) {
	if m.Live() == nil {
		return nil, ErrNoCatalog
	}
	obj, ok, err := m.Open(key)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	return obj, err
}

// Open serves key from the live generation if the mirror covers it (see
// Covers); ok is false when it does not, for the caller to get key
// elsewhere. One catalog lookup either way.
func (m *Mirror) Open(key string) (obj *object.Object, ok bool, err error) {
	o, c, ok := m.covered(key)
	if !ok {
		return nil, false, nil
	}
	obj, err = m.blobObject(key, o.Digest, c.Published)
	if err != nil {
		return nil, true, fmt.Errorf("mirror: %s listed in generation %d but its blob is missing: %w", key, c.Generation, err)
	}
	return obj, true, nil
}

// blobHeader is the shared, read-only header of mirrored objects.
var blobHeader = http.Header{"Content-Type": {"application/octet-stream"}}

// blobObject serves the stored blob d under key.
func (m *Mirror) blobObject(key string, d digest.Digest, lastModified time.Time) (*object.Object, error) {
	r, err := m.store.OpenBlob(d)
	if err != nil {
		return nil, err
	}
	return &object.Object{Key: key, Size: r.Size, ETag: d.ETag(), LastModified: lastModified, Header: blobHeader,
		Cache: object.Hit, Body: r.Body(m.cfg.Sendfile)}, nil
}
