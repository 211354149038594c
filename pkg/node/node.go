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
	"github.com/relayd/relayd/pkg/admindoc"
	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/contentcoding"
	"github.com/relayd/relayd/pkg/events"
	"github.com/relayd/relayd/pkg/group"
	"github.com/relayd/relayd/pkg/hierarchy"
	"github.com/relayd/relayd/pkg/mirror"
	"github.com/relayd/relayd/pkg/origin"
	"github.com/relayd/relayd/pkg/outcome"
	"github.com/relayd/relayd/pkg/proxycache"
	"github.com/relayd/relayd/pkg/ratelog"
	"github.com/relayd/relayd/pkg/server"
	"github.com/relayd/relayd/pkg/store"
	"github.com/relayd/relayd/pkg/tlsconf"
	"github.com/relayd/relayd/pkg/treeauth"
	"github.com/relayd/relayd/pkg/wire"
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
	mirror *mirror.Mirror    // mirror mode; proxy mode with --root
	origin *origin.Origin    // origin mode
	resign *origin.Resigner  // origin mode with --timestamp-key
	// rollout is the origin's staged rollout (rollout-plan; rollout.go).
	rollout *rolloutPart
	// gatesHeld returns the rollout gates a relay follows (nil: none).
	gatesHeld func() (*wire.Gates, admindoc.SignedGates, bool)
	// originEnc sends an origin's files as zstd and dcz (nil: identity).
	originEnc *origin.Encoder
	group     *group.Group // relays with --gossip

	// encoder serves zstd and dcz forms of stored blobs (nil: identity).
	encoder *contentcoding.Cache
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
	prefetch  *proxycache.Prefetcher // proxy mode
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

	outcomes *outcome.Table // the agents' outcomes (outcome.go); nil with outcome-agents 0
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
	n.openOutcomes()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	n.contentLn = newLimitListener(ln, n.connLimit, n.log.With().Str("component", "content").Logger(), clk)
	n.url = advertiseURL(cfg, ln.Addr().String())
	content := server.ContentConfig{Ready: n.ready, Relays: n.relays, Group: cfg.Group, MaxHops: cfg.MaxHops, OnLoop: n.refusedLoop, OnClaimedLoop: n.claimedLoop,
		Events: n.events, Report: n.takeReport, Closing: n.closing, TreeAuth: auth, Outcome: n.outcomeFunc()}
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
		content.Source, content.Metadata, content.Encoder = o, o.Metadata, n.openOriginEncoder(cfg, clk)
		if err := n.openSigners(cfg, clk); err != nil {
			n.closeParts()
			return nil, err
		}
	case ModeProxy, ModeMirror:
		if err := n.openRelay(cfg, clk); err != nil {
			n.closeParts()
			return nil, err
		}
		if err := n.openGroup(cfg, clk); err != nil {
			n.closeParts()
			return nil, err
		}
		content.Source, content.Metadata, content.Encoder = n, n.metadata, n.contentEncoder()
		if n.mirror != nil {
			content.Blob = n.mirror.Blob
			content.Behind = n.mirror.Behind
		} else {
			// Other methods than GET and HEAD go upstream when the
			// cache is told to (--forward-methods); a verifying relay
			// serves a read-only signed tree and answers 405.
			content.Forward = n.cache
		}
	}
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), (*metrics)(n), (*budgetMetrics)(n))
	n.content = server.NewContent(content, n.log.With().Str("component", "content").Logger())
	n.contentSrv = n.newContentServer()
	if err := n.openTLS(cfg, clk); err != nil {
		n.closeParts()
		return nil, err
	}
	if err := n.openAdmin(cfg, clk); err != nil {
		n.closeParts()
		return nil, err
	}
	return n, nil
}

// openTLS binds the TLS content port, if there is a certificate to serve.
func (n *Node) openTLS(cfg Config, clk clock.Clock) error {
	if n.tls == nil || !n.tls.Serving() {
		return nil
	}
	tln, err := net.Listen("tcp", cfg.TLSListen)
	if err != nil {
		return fmt.Errorf("listen tls %s: %w", cfg.TLSListen, err)
	}
	tln = newLimitListener(tln, n.connLimit, n.log.With().Str("component", "content-tls").Logger(), clk)
	n.tlsLn = tls.NewListener(tln, n.tls.ServerConfig())
	n.tlsSrv = n.newContentServer()
	// Handshake failures (a child without a client certificate) are
	// worth an operator's eye: into the log, not stderr.
	n.tlsSrv.ErrorLog = stdlog.New(n.log.With().Str("component", "content-tls").Logger(), "", 0)
	return nil
}

// openAdmin binds the admin port, if configured, and builds its server.
func (n *Node) openAdmin(cfg Config, clk clock.Clock) error {
	if cfg.Admin == "" {
		return nil
	}
	token, err := readToken(cfg.AdminTokenFile)
	if err != nil {
		return err
	}
	aln, err := net.Listen("tcp", cfg.Admin)
	if err != nil {
		return fmt.Errorf("listen admin %s: %w", cfg.Admin, err)
	}
	// No cap on the admin port (loopback or token-protected), but the
	// same pause on EMFILE: it must not spin when descriptors run out.
	n.adminLn = newLimitListener(aln, nil, n.log.With().Str("component", "admin").Logger(), clk)
	n.adminSrv = &http.Server{
		Handler: admin.New(admin.Config{Status: n.status, Registry: n.reg, Token: token, Sync: n.syncer(), Members: n.members,
			Tree: n.treeView, Agents: n.agents, Cache: n.adminCache(), Compliance: n.complianceFunc(),
			Rollout: (*nodeRollout)(n)},
			n.log.With().Str("component", "admin").Logger()),
		// The admin API serves small documents only.
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second,
	}
	return nil
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
	if n.resign != nil {
		g.Go(func() error { n.resign.Run(gctx, n.origin); return nil })
	}
	if n.rollout != nil {
		g.Go(func() error { n.runRollout(gctx); return nil })
	}
	if n.up != nil {
		g.Go(func() error { return n.up.Run(gctx) })
		g.Go(func() error { return n.watchParent(gctx) })
		g.Go(func() error { return n.reportLoop(gctx) })
	}
	if n.mirror != nil {
		if l := n.mirror.Live(); l != nil {
			n.mirrorLive(l) // restored from disk: announce it
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
	n.closeRollout()
	if n.originEnc != nil {
		_ = n.originEnc.Close()
	}
	for _, ln := range []net.Listener{n.contentLn, n.tlsLn, n.adminLn} {
		if ln != nil {
			_ = ln.Close()
		}
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
