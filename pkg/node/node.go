package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/relayd/relayd/pkg/admin"
	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/events"
	"github.com/relayd/relayd/pkg/group"
	"github.com/relayd/relayd/pkg/hierarchy"
	"github.com/relayd/relayd/pkg/mirror"
	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/origin"
	"github.com/relayd/relayd/pkg/proxycache"
	"github.com/relayd/relayd/pkg/ratelog"
	"github.com/relayd/relayd/pkg/server"
	"github.com/relayd/relayd/pkg/store"
	"github.com/relayd/relayd/pkg/tlsconf"
	"github.com/relayd/relayd/pkg/treeauth"
)

// Version is the relayd version, set by cmd/relayd.
var Version = "dev"

// Node is one running relayd.
type Node struct {
	cfg   Config
	log   zerolog.Logger
	clk   clock.Clock
	start time.Time
	gen   atomic.Uint64 // the catalog generation served (see announce)

	store  *store.Store      // proxy and mirror mode
	cache  *proxycache.Cache // proxy mode
	mirror *mirror.Mirror    // mirror mode; proxy mode with --pubkey
	origin *origin.Origin    // origin mode
	group  *group.Group      // relays with --gossip
	// warnings are configuration risks found at start (Status.Warnings).
	warnings []string
	up       *hierarchy.Client // relays
	diskMu   sync.Mutex
	diskErr  error // last disk probe (relays)
	loopMu   sync.Mutex
	loops    LoopStatus // requests this relay refused as loops
	url      string     // advertised content URL
	reg      *prometheus.Registry

	events    *events.Hub     // what /-/events announces
	tree      *hierarchy.Tree // the children's reports
	reportNow chan struct{}
	closing   chan struct{} // closed when shutdown starts: ends event streams
	closeOnce sync.Once
	prefetch  prefetcher
	ctxMu     sync.Mutex
	ctx       context.Context // Run's, for work the admin API starts

	tls                *tlsconf.Material // nil without TLS files
	treeKey            *treeauth.Key     // nil without tree-key-file
	contentLn, adminLn net.Listener
	tlsLn              net.Listener // the TLS content port; nil without a certificate
	tlsSrv             *http.Server
	content            *server.Content
	contentSrv         *http.Server
	conns              *conns // content connections without a request yet
	adminSrv           *http.Server
	budget             budget
	connLimit          *connLimit // the content port's connections (plain and TLS)

	lim *ratelog.Limiter // refusals anyone can cause: one line per interval
}

// New validates cfg, opens what the mode needs and binds the listeners,
// so that addresses like ":0" are known before Run.
func New(cfg Config, log zerolog.Logger, clk clock.Clock) (*Node, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	n := &Node{cfg: cfg, log: log.With().Str("node", cfg.Node).Logger(), clk: clk, start: clk.Now(), reg: prometheus.NewRegistry(), conns: newConns(),
		events: events.NewHub(), tree: hierarchy.NewTree(3*cfg.ReportInterval, clk), reportNow: make(chan struct{}, 1),
		closing: make(chan struct{}), lim: ratelog.New(clk, ratelog.DefaultEvery)}
	if cfg.TLS != (tlsconf.Files{}) {
		m, err := tlsconf.Load(cfg.TLS)
		if err != nil {
			return nil, err
		}
		n.tls = m
	}
	auth, err := n.treeAuth(cfg, clk)
	if err != nil {
		return nil, err
	}
	n.planBudget()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	n.contentLn = newLimitListener(ln, n.connLimit, n.log.With().Str("component", "content").Logger(), clk)
	n.url = advertiseURL(cfg, ln.Addr().String())
	content := server.ContentConfig{Ready: n.ready, Relays: n.relays, Group: cfg.Group, MaxHops: cfg.MaxHops, OnLoop: n.refusedLoop, OnClaimedLoop: n.claimedLoop,
		Events: n.events, Report: n.takeReport, Closing: n.closing, TreeAuth: auth}
	if cfg.Mode == ModeOrigin {
		// An origin never forwards: nothing can loop through it.
		content.Group = ""
	}
	switch cfg.Mode {
	case ModeOrigin:
		o, err := origin.New(cfg.Root, cfg.Cache.Sendfile)
		if err != nil {
			n.closeParts()
			return nil, err
		}
		n.origin = o
		content.Source, content.Catalog = o, o.Catalog
	case ModeProxy, ModeMirror:
		if err := n.openRelay(cfg, clk); err != nil {
			n.closeParts()
			return nil, err
		}
		if err := n.openGroup(cfg, clk); err != nil {
			n.closeParts()
			return nil, err
		}
		content.Source = n
		if n.mirror != nil {
			content.Catalog = n.serveCatalog
			content.Blob = n.mirror.Blob
			content.Behind = n.mirror.Behind
		} else {
			// Without the public key a proxy passes the catalog on as a
			// cached object, revalidated on every request; agents verify.
			content.Catalog = func(ctx context.Context) (*object.Object, error) { return n.cache.Get(ctx, catalog.File) }
		}
	}
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), (*metrics)(n), (*budgetMetrics)(n))
	n.content = server.NewContent(content, n.log.With().Str("component", "content").Logger())
	n.contentSrv = n.newContentServer()
	if n.tls != nil && n.tls.Serving() {
		tln, err := net.Listen("tcp", cfg.TLSListen)
		if err != nil {
			n.closeParts()
			return nil, fmt.Errorf("listen tls %s: %w", cfg.TLSListen, err)
		}
		tln = newLimitListener(tln, n.connLimit, n.log.With().Str("component", "content-tls").Logger(), clk)
		n.tlsLn = tls.NewListener(tln, n.tls.ServerConfig())
		n.tlsSrv = n.newContentServer()
		// Handshake failures (a child without a client certificate) are
		// worth an operator's eye: into the log, not stderr.
		n.tlsSrv.ErrorLog = stdlog.New(n.log.With().Str("component", "content-tls").Logger(), "", 0)
	}
	if cfg.Admin != "" {
		token, err := readToken(cfg.AdminTokenFile)
		if err != nil {
			n.closeParts()
			return nil, err
		}
		aln, err := net.Listen("tcp", cfg.Admin)
		if err != nil {
			n.closeParts()
			return nil, fmt.Errorf("listen admin %s: %w", cfg.Admin, err)
		}
		// No cap on the admin port (loopback or token-protected), but the
		// same pause on EMFILE: it must not spin when descriptors run out.
		n.adminLn = newLimitListener(aln, nil, n.log.With().Str("component", "admin").Logger(), clk)
		n.adminSrv = &http.Server{
			Handler: admin.New(admin.Config{Status: n.status, Registry: n.reg, Token: token, Sync: n.syncer(), Members: n.members,
				Tree: n.treeView, Agents: n.agents, Cache: n.adminCache()},
				n.log.With().Str("component", "admin").Logger()),
			// The admin API serves small documents only.
			ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second,
		}
	}
	return n, nil
}

// newContentServer is the content port's http.Server (plain and TLS).
func (n *Node) newContentServer() *http.Server {
	return &http.Server{
		Handler: n.content,
		// Slow clients must not hold a connection open without sending
		// their headers; bodies are never read on this port except small
		// API posts.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       0,
		// No WriteTimeout: a 1 GiB package to a branch office over a slow
		// link legitimately takes hours. Stalled clients are bounded by
		// TCP keepalive and the drain timeout at shutdown.
		WriteTimeout: 0,
		IdleTimeout:  120 * time.Second,
		// Above the 32 KiB the handler allows, so the handler's JSON 431
		// is what clients see for 32–64 KiB.
		MaxHeaderBytes: 64 << 10,
		ConnContext:    server.ConnContext,
		ConnState:      n.conns.track,
		ErrorLog:       nil,
	}
}

// adminCache is the cache endpoints' view of the node; nil for an origin.
func (n *Node) adminCache() admin.Cache {
	if n.store == nil {
		return nil
	}
	return n
}

// runCtx is Run's context: work the admin API starts ends with the node.
func (n *Node) runCtx() context.Context {
	n.ctxMu.Lock()
	defer n.ctxMu.Unlock()
	if n.ctx == nil {
		return context.Background()
	}
	return n.ctx
}

// Reload re-reads what can change without a restart (SIGHUP): the TLS
// certificate and CAs. Connections open stay; new ones use the new
// material. On error the material in use stays.
func (n *Node) Reload() error {
	if n.tls == nil {
		n.log.Info().Msg("reload: nothing to reload (no TLS files)")
		return nil
	}
	if err := n.tls.Reload(); err != nil {
		n.log.Error().Err(err).Msg("reload failed; the TLS material in use stays")
		return err
	}
	n.log.Info().Msg("reloaded the TLS certificate and CAs")
	return nil
}

// TLSAddr is the bound TLS content address, "" without TLS.
func (n *Node) TLSAddr() string {
	if n.tlsLn == nil {
		return ""
	}
	return n.tlsLn.Addr().String()
}

// ContentAddr is the bound content address.
func (n *Node) ContentAddr() string { return n.contentLn.Addr().String() }

// AdminAddr is the bound admin address, "" if disabled.
func (n *Node) AdminAddr() string {
	if n.adminLn == nil {
		return ""
	}
	return n.adminLn.Addr().String()
}

// Run serves until ctx ends, then shuts down in order: stop accepting,
// finish in-flight responses (at most DrainTimeout), cancel fills, close
// the store.
func (n *Node) Run(ctx context.Context) error {
	defer n.closeParts()
	g, gctx := errgroup.WithContext(ctx)
	n.ctxMu.Lock()
	n.ctx = gctx
	n.ctxMu.Unlock()
	serve := func(srv *http.Server, ln net.Listener, name string) {
		g.Go(func() error {
			n.log.Info().Str("addr", ln.Addr().String()).Str("mode", n.cfg.Mode).Msgf("%s listening", name)
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("%s server: %w", name, err)
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			dctx, cancel := context.WithTimeout(context.Background(), n.cfg.DrainTimeout)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- srv.Shutdown(dctx) }()
			if srv == n.contentSrv || srv == n.tlsSrv {
				n.conns.closeFresh()
				n.closeOnce.Do(func() { close(n.closing) })
			}
			if err := <-done; err != nil {
				n.log.Warn().Err(err).Msgf("%s: drain timeout, closing remaining connections", name)
				_ = srv.Close()
			}
			return nil
		})
	}
	serve(n.contentSrv, n.contentLn, "content")
	if n.tlsSrv != nil {
		serve(n.tlsSrv, n.tlsLn, "content-tls")
	}
	if n.adminSrv != nil {
		serve(n.adminSrv, n.adminLn, "admin")
	}
	if n.store != nil {
		g.Go(func() error { return n.store.Run(gctx) })
		g.Go(func() error { return n.probeDisk(gctx) })
	}
	if n.mirror != nil {
		g.Go(func() error { return n.mirror.Run(gctx) })
	}
	if n.origin != nil {
		g.Go(func() error { return n.watchOrigin(gctx) })
	}
	if n.up != nil {
		g.Go(func() error { return n.up.Run(gctx) })
		g.Go(func() error { return n.watchParent(gctx) })
		g.Go(func() error { return n.reportLoop(gctx) })
	}
	if n.mirror != nil {
		if c := n.mirror.Live(); c != nil {
			n.mirrorLive(c) // restored from disk: announce it
		}
	}
	if n.group == nil {
		n.publishRelays()
	}
	if n.group != nil {
		// On shutdown the group is left first thing, so agents and peers
		// stop being sent here while responses in flight drain.
		g.Go(func() error { return n.group.Run(gctx) })
		g.Go(func() error { return n.publishMeta(gctx) })
	}
	err := g.Wait()
	n.log.Info().Msg("stopped")
	return err
}

// closeParts releases what New opened; safe to call after a partial New.
func (n *Node) closeParts() {
	if n.group != nil {
		n.group.Close()
	}
	if n.mirror != nil {
		n.mirror.Close()
	}
	if n.cache != nil {
		n.cache.Close()
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			n.log.Warn().Err(err).Msg("close store")
		}
	}
	if n.origin != nil {
		_ = n.origin.Close()
	}
	for _, ln := range []net.Listener{n.contentLn, n.tlsLn, n.adminLn} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

// openRelay opens the store, the upstream client and, by mode, the mirror
// and the proxy cache.
func (n *Node) openRelay(cfg Config, clk clock.Clock) error {
	scfg := store.DefaultConfig(cfg.DataDir)
	scfg.MaxBytes = cfg.CacheMax
	st, err := store.Open(scfg, n.log, clk)
	if err != nil {
		return err
	}
	n.store = st
	ucfg := cfg.Upstream
	ucfg.UserAgent = "relayd/" + Version + " (" + cfg.Node + ")"
	ucfg.Group, ucfg.Node = cfg.Group, cfg.Node
	if n.tls != nil {
		ucfg.TLS = n.tls.ClientConfig()
		ucfg.CertClaims = n.tls.Serving()
	}
	if n.treeKey != nil {
		ucfg.Auth = &treeauth.Signer{Key: n.treeKey, Group: cfg.Group, Node: cfg.Node, Clock: clk}
	}
	up, err := hierarchy.New(ucfg, n.log)
	if err != nil {
		return err
	}
	n.up = up
	if cfg.PubKeyFile != "" {
		pub, err := catalog.LoadPublicKey(cfg.PubKeyFile)
		if err != nil {
			return err
		}
		mcfg := cfg.Mirror
		mcfg.PublicKey = pub
		mcfg.Sendfile = cfg.Cache.Sendfile
		// A proxy follows the catalog (to verify and to know what is
		// immutable) and mirrors only the kinds it was told to.
		mcfg.Serve = cfg.Mode == ModeMirror || len(mcfg.Include) > 0
		mcfg.OnLive = n.mirrorLive
		if cfg.Gossip != "" && mcfg.Serve {
			// Gossip converges in about 100 ms on a LAN (1 s at 50
			// relays): wait that long before the first sync, so that
			// relays started together split it.
			mcfg.Settle = time.Second
		}
		if n.mirror, err = mirror.New(mcfg, st, background{up}, n.log, clk); err != nil {
			return err
		}
	}
	if cfg.Mode == ModeProxy {
		var expect proxycache.Expecter
		if n.mirror != nil {
			expect = n.mirror
		}
		fillLatency := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "relayd", Name: "fill_latency_seconds",
			Help: "Time a fill waited for the upstream's (or the owner's) response headers.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)})
		n.reg.MustRegister(fillLatency)
		ccfg := cfg.Cache
		ccfg.ObserveFill = func(d time.Duration) { fillLatency.Observe(d.Seconds()) }
		n.cache = proxycache.New(ccfg, st, up, expect, n.log, clk)
	}
	return nil
}

// background is the upstream as the mirror uses it: its traffic yields to
// agents' fills under --upstream-rate, and the signed catalog is asked of
// every upstream and fallback before the tree counts as having none.
type background struct{ up *hierarchy.Client }

func (b background) Fetch(ctx context.Context, key string, hdr http.Header) (*http.Response, error) {
	ctx = hierarchy.Background(ctx)
	if key == catalog.File {
		ctx = hierarchy.Required(ctx)
	}
	return b.up.Fetch(ctx, key, hdr)
}

// Get routes an object request: the mirror serves what it holds (all of a
// mirror's objects, the mirrored kinds of a proxy), the proxy cache the
// rest.
func (n *Node) Get(ctx context.Context, key string) (*object.Object, error) {
	switch {
	case n.cache == nil:
		return n.mirror.Get(ctx, key)
	case n.mirror != nil:
		if obj, ok, err := n.mirror.Open(key); ok {
			return obj, err
		}
	}
	return n.cache.Get(ctx, key)
}

// serveCatalog is /-/catalog of a relay: its live generation.
func (n *Node) serveCatalog(context.Context) (*object.Object, error) {
	c := n.mirror.Live()
	if c == nil {
		// Not "404, no catalog": a child must retry, not take this relay
		// for a plain tree.
		return nil, &server.Error{Status: http.StatusServiceUnavailable, Code: "not_ready", Msg: "no verified catalog yet"}
	}
	h := http.Header{}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	return &object.Object{Key: catalog.File, Size: int64(len(c.Raw)), ETag: c.FileDigest.ETag(),
		LastModified: c.Published, Header: h, Body: object.BytesBody(c.Raw)}, nil
}

// syncer is the admin API's view of the mirror, nil without one.
func (n *Node) syncer() admin.Syncer {
	if n.mirror == nil {
		return nil
	}
	return mirrorSyncer{n.mirror}
}

type mirrorSyncer struct{ m *mirror.Mirror }

func (s mirrorSyncer) Trigger()      { s.m.Trigger() }
func (s mirrorSyncer) Progress() any { return s.m.Progress() }

// ready is /-/readyz: a relay whose disk does not take writes is not
// ready, a mirror is ready once a generation is live, and a proxy with
// --pubkey once it holds a verified catalog (until then it refuses every
// object: catalog_unavailable).
func (n *Node) ready() error {
	if err := n.diskReady(); err != nil {
		return err
	}
	switch {
	case n.cfg.Mode == ModeMirror:
		return n.mirror.Ready()
	case n.mirror != nil && n.mirror.Live() == nil:
		if last := n.mirror.Progress().LastError; last != "" {
			return fmt.Errorf("%w (last attempt: %s)", proxycache.ErrCatalogUnavailable, last)
		}
		return proxycache.ErrCatalogUnavailable
	}
	return nil
}

// Status is the /v1/status document.
type Status struct {
	Node    string `json:"node"`
	Group   string `json:"group"`
	Mode    string `json:"mode"`
	Version string `json:"version"`
	Uptime  string `json:"uptime"`
	// Upstream is the configured upstreams; Parents the parent relays in
	// use (learned from the upstream's /-/relays); Transfers what it took
	// to keep transfers going.
	Upstream  []string         `json:"upstream,omitempty"`
	Fallback  []string         `json:"fallback,omitempty"`
	Parents   []string         `json:"parents,omitempty"`
	Transfers *hierarchy.Stats `json:"transfers,omitempty"`
	// Serving is how many object responses are in progress; Agents and
	// Children how many agents and child relays hold an event stream.
	Serving    int64             `json:"serving"`
	Agents     int               `json:"agents"`
	Children   int               `json:"children"`
	Generation uint64            `json:"generation"`
	Store      *store.Stats      `json:"store,omitempty"`
	Cache      *proxycache.Stats `json:"cache,omitempty"`
	Sync       *mirror.Progress  `json:"sync,omitempty"`
	// Loops reports misconfigured cycles: requests refused here, and
	// upstream requests refused by a parent, with the last message.
	Loops *LoopStatus `json:"loops,omitempty"`
	// Budget is the connection budget and what it refused.
	Budget *BudgetStatus `json:"budget,omitempty"`
	// Conflicts lists identities two relays claim (see Conflict).
	Conflicts []Conflict `json:"conflicts,omitempty"`
	// Warnings are configuration risks found at start (gossip without a
	// key), also logged then.
	Warnings []string `json:"warnings,omitempty"`
}

// LoopStatus counts loop-guard refusals: Refused those of requests that
// proved to come from a relay of the tree (signed reports), an alert;
// Claimed those of requests that only claim to (object requests and
// streams, which anyone can send with this group in X-Relay-Path).
type LoopStatus struct {
	Refused         int64  `json:"refused"`
	LastRefused     string `json:"last_refused,omitempty"`
	Claimed         int64  `json:"claimed"`
	LastClaimed     string `json:"last_claimed,omitempty"`
	RefusedUpstream int64  `json:"refused_upstream"`
	LastUpstream    string `json:"last_upstream,omitempty"`
}

// refusedLoop records a request this relay refused as a loop.
func (n *Node) refusedLoop(err error) {
	n.loopMu.Lock()
	n.loops.Refused++
	n.loops.LastRefused = err.Error()
	n.loopMu.Unlock()
	n.lim.Event(&n.log, zerolog.ErrorLevel, "loop").Err(err).Msg("refused a request that loops: check the upstream configuration")
}

// claimedLoop records a request refused as a loop that did not prove it
// comes from a relay: counted, logged at info at most once an interval,
// no alert (anyone can send X-Relay-Path).
func (n *Node) claimedLoop(err error) {
	n.loopMu.Lock()
	n.loops.Claimed++
	n.loops.LastClaimed = err.Error()
	n.loopMu.Unlock()
	n.lim.Event(&n.log, zerolog.InfoLevel, "claimed loop").Err(err).
		Msg("refused a request whose X-Relay-Path already holds this group (unauthenticated: a loop, or anyone's header)")
}

func (n *Node) status() any {
	s := Status{Node: n.cfg.Node, Group: n.cfg.Group, Mode: n.cfg.Mode, Version: Version,
		Uptime: n.clk.Now().Sub(n.start).Round(time.Second).String(), Upstream: n.cfg.Upstream.Upstreams,
		Fallback: n.cfg.Upstream.Fallback, Serving: n.content.Serving(), Generation: n.generation()}
	s.Agents, s.Children = n.events.Count()
	if n.store != nil {
		st := n.store.Stats()
		s.Store = &st
	}
	if n.cache != nil {
		cs := n.cache.Stats()
		s.Cache = &cs
	}
	if n.mirror != nil {
		p := n.mirror.Progress()
		s.Sync = &p
	}
	if n.up != nil {
		s.Parents = n.up.Parents()
		ts := n.up.Stats()
		s.Transfers = &ts
	}
	n.loopMu.Lock()
	l := n.loops
	n.loopMu.Unlock()
	if n.up != nil {
		l.RefusedUpstream, l.LastUpstream = n.up.Loops()
	}
	if l.Refused > 0 || l.RefusedUpstream > 0 || l.Claimed > 0 {
		s.Loops = &l
	}
	s.Budget = n.budgetStatus()
	s.Conflicts = n.conflicts()
	s.Warnings = n.warnings
	return s
}

// metrics is the node as a Prometheus collector: a scrape reads each
// source once (the counters of cache, store, mirror, upstream, group and
// content port) and reports what it read. The fill latency histogram is
// registered apart (openRelay).
type metrics Node

var _ prometheus.Collector = (*metrics)(nil)

// desc is a relayd_* series of the exposition; vtype says whether it
// counts or gauges.
type desc struct {
	*prometheus.Desc
	vtype prometheus.ValueType
}

func newDesc(name, help string, vtype prometheus.ValueType, labels ...string) desc {
	return desc{prometheus.NewDesc("relayd_"+name, help, labels, nil), vtype}
}

// The series; operations.md lists them. Which of them a node reports
// depends on what it runs (a store, a cache, a mirror, a group).
var (
	mGeneration        = newDesc("generation", "Catalog generation this node serves (0: none).", prometheus.GaugeValue)
	mAgents            = newDesc("agents_connected", "Agents holding an event stream open.", prometheus.GaugeValue)
	mChildren          = newDesc("children_connected", "Child relays holding an event stream open.", prometheus.GaugeValue)
	mFailovers         = newDesc("upstream_failovers_total", "Upstream requests that moved on from a failed parent.", prometheus.CounterValue)
	mResumes           = newDesc("upstream_resumes_total", "Transfers resumed with Range on another parent after breaking.", prometheus.CounterValue)
	mResumeRefused     = newDesc("upstream_resume_refused_total", "Answers to a Range resume that were not the same representation (another strong ETag or length, none, a 200): not spliced.", prometheus.CounterValue)
	mFallbacks         = newDesc("upstream_fallbacks_total", "Requests sent to the fallback because every parent failed.", prometheus.CounterValue)
	mEvictions         = newDesc("evictions_total", "Blobs evicted to stay within the quota.", prometheus.CounterValue)
	mStoreBytes        = newDesc("store_bytes", "Bytes of stored blobs.", prometheus.GaugeValue)
	mStoreBlobs        = newDesc("store_blobs", "Stored blobs.", prometheus.GaugeValue)
	mBytesServed       = newDesc("bytes_served_total", "Body bytes of object responses.", prometheus.CounterValue)
	mGroupMembers      = newDesc("group_members", "Members of this relay's group by state.", prometheus.GaugeValue, "state")
	mMirrorTarget      = newDesc("mirror_target_generation", "Generation the mirror syncs toward (the upstream's newest).", prometheus.GaugeValue)
	mMirrorLag         = newDesc("mirror_lag_generations", "Generations the live one is behind the upstream's newest.", prometheus.GaugeValue)
	mMirrorObjectsDone = newDesc("mirror_objects_done", "Objects of the generation in sync that are on disk.", prometheus.GaugeValue)
	mMirrorObjects     = newDesc("mirror_objects_total", "Objects of the generation in sync.", prometheus.GaugeValue)
	// mRequests's result label is hit, miss, stale, revalidated, peer
	// (fills from the group's owner) or error (an error status).
	mRequests      = newDesc("requests_total", "Object requests by result.", prometheus.CounterValue, "result")
	mUpstreamBytes = newDesc("upstream_bytes_total", "Bytes fetched from upstream (the WAN).", prometheus.CounterValue)
	mPeerBytes     = newDesc("peer_bytes_total", "Bytes fetched from other relays of the group (the LAN).", prometheus.CounterValue)
	mFills         = newDesc("fills_total", "Upstream fills started.", prometheus.CounterValue)
	mFillErrors    = newDesc("fill_errors_total", "Upstream fills that failed.", prometheus.CounterValue)
	mCoalesced     = newDesc("coalesced_total", "Requests that joined a fill in flight.", prometheus.CounterValue)
)

// Describe sends every series the node may report.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []desc{mGeneration, mAgents, mChildren, mFailovers, mResumes, mResumeRefused, mFallbacks, mEvictions, mStoreBytes,
		mStoreBlobs, mBytesServed, mGroupMembers, mMirrorTarget, mMirrorLag, mMirrorObjectsDone, mMirrorObjects, mRequests,
		mUpstreamBytes, mPeerBytes, mFills, mFillErrors, mCoalesced} {
		ch <- d.Desc
	}
}

// Collect reads each source once and sends the values.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	n := (*Node)(m)
	emit := func(d desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d.Desc, d.vtype, float64(v), labels...)
	}
	emit(mGeneration, int64(n.generation()))
	agents, children := n.events.Count()
	emit(mAgents, int64(agents))
	emit(mChildren, int64(children))
	emit(mBytesServed, n.content.BytesServed())
	emit(mRequests, n.content.Failed(), "error")
	// Resumes refused by the upstream client, the cache's peer resumes and
	// the mirror's partial files alike: one series.
	var refused int64
	if n.up != nil {
		s := n.up.Stats()
		emit(mFailovers, s.Failovers)
		emit(mResumes, s.Resumes)
		emit(mFallbacks, s.Fallbacks)
		refused += s.ResumesRefused
	}
	if n.store != nil {
		s := n.store.Stats()
		emit(mEvictions, s.Evictions)
		emit(mStoreBytes, s.Bytes)
		emit(mStoreBlobs, int64(s.Blobs))
	}
	if n.group != nil {
		var alive, gone int64
		for _, mb := range n.group.Members() {
			switch mb.State {
			case "alive":
				alive++
			case "gone":
				gone++
			}
		}
		emit(mGroupMembers, alive, "alive")
		emit(mGroupMembers, gone, "gone")
	}
	if n.mirror != nil {
		p := n.mirror.Progress()
		emit(mMirrorTarget, int64(p.Target))
		emit(mMirrorLag, int64(max(p.Target, p.Generation)-p.Generation))
		emit(mMirrorObjectsDone, p.ObjectsDone)
		emit(mMirrorObjects, p.ObjectsTotal)
		refused += p.ResumesRefused
	}
	if n.cache != nil {
		s := n.cache.Stats()
		emit(mRequests, s.Hits, "hit")
		emit(mRequests, s.Misses, "miss")
		emit(mRequests, s.Stale, "stale")
		emit(mRequests, s.Revalidated, "revalidated")
		emit(mRequests, s.PeerFills, "peer")
		emit(mUpstreamBytes, s.UpstreamBytes)
		emit(mPeerBytes, s.PeerBytes)
		emit(mFills, s.Fills)
		emit(mFillErrors, s.FillErrors)
		emit(mCoalesced, s.Coalesced)
		refused += s.ResumesRefused
	}
	if n.up != nil {
		emit(mResumeRefused, refused)
	}
}

func readToken(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if len(t) < 16 {
		return "", fmt.Errorf("admin token in %s is shorter than 16 characters", path)
	}
	return t, nil
}
