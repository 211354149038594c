// A relay's parts, as the node opens them: the store, the upstream
// client, the mirror and the proxy cache, and how an object request is
// routed between the mirror and the cache.
package node

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/contentcoding"
	"github.com/relayd/relayd/pkg/hierarchy"
	"github.com/relayd/relayd/pkg/mirror"
	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/origin"
	"github.com/relayd/relayd/pkg/proxycache"
	"github.com/relayd/relayd/pkg/server"
	"github.com/relayd/relayd/pkg/store"
	"github.com/relayd/relayd/pkg/treeauth"
)

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
	if cfg.EncodeMax > 0 {
		ecfg := contentcoding.DefaultConfig(filepath.Join(cfg.DataDir, "encoded"))
		ecfg.MaxBytes = cfg.EncodeMax
		if n.encoder, err = contentcoding.Open(ecfg, st, n.log.With().Str("component", "encoding").Logger()); err != nil {
			return err
		}
	}
	ucfg := cfg.Upstream
	ucfg.UserAgent = "relayd/" + Version + " (" + cfg.Node + ")"
	ucfg.Group, ucfg.Node = cfg.Group, cfg.Node
	if t, ok := clk.(clock.Timers); ok {
		// Failover, refreshes and backoffs on the node's clock.
		ucfg.Clock = t
	}
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
	if cfg.Root != "" {
		if err := n.openMirror(cfg, clk, st, up); err != nil {
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
		n.prefetch = proxycache.NewPrefetcher(n.cache, n.log, clk)
		n.openPrepos(cfg, clk)
	}
	return nil
}

// openMirror starts the TUF follower (cfg.Root): a mirror's whole
// generations, or what a verifying proxy needs to verify and pre-position.
func (n *Node) openMirror(cfg Config, clk clock.Clock, st *store.Store, up *hierarchy.Client) error {
	root, err := os.ReadFile(cfg.Root)
	if err != nil {
		return fmt.Errorf("root: %w", err)
	}
	mcfg := cfg.Mirror
	mcfg.Root, mcfg.Dir = root, filepath.Join(cfg.DataDir, "tuf")
	mcfg.Sendfile = cfg.Cache.Sendfile
	// A proxy follows the catalog (to verify and to know what is
	// immutable) and mirrors only the kinds it was told to.
	mcfg.Serve = cfg.Mode == ModeMirror || len(mcfg.Include) > 0
	mcfg.OnLive = n.mirrorLive
	mcfg.Keep, mcfg.OnPolled = n.keepGenerations, n.kickGates
	if n.encoder != nil {
		mcfg.OnChanged = n.prebuild
	}
	if cfg.Gossip != "" && mcfg.Serve {
		// Gossip converges in about 100 ms on a LAN (1 s at 50
		// relays): wait that long before the first sync, so that
		// relays started together split it.
		mcfg.Settle = time.Second
		mcfg.Formed = n.groupFormed(cfg.Join, cfg.Gossip)
	}
	// Metadata of unknown length is spooled in the store's tmp,
	// cleared at start.
	meta := up.Metadata(filepath.Join(cfg.DataDir, "tmp"), func() uint64 { return n.mirror.Wanted() })
	if n.mirror, err = mirror.New(mcfg, st, background{up}, meta, n.log, clk); err != nil {
		return err
	}
	n.openGates()
	return nil
}

// background is the upstream as the mirror uses it: its traffic yields to
// agents' fills under --upstream-rate.
type background struct{ up *hierarchy.Client }

func (b background) Fetch(ctx context.Context, key string, hdr http.Header) (*http.Response, error) {
	return b.up.Fetch(hierarchy.Background(ctx), key, hdr)
}

// Get routes an object request: the mirror serves what it holds (all of a
// mirror's objects, the mirrored kinds of a proxy), the proxy cache the
// rest.
func (n *Node) Get(ctx context.Context, key string) (*object.Object, error) {
	key = n.targetKey(key)
	if obj, ok, err := n.version(ctx, key); ok {
		return obj, err
	}
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

// prebuild makes the deltas children will ask for when a generation goes
// live (the new version of each changed path against the earlier one),
// one at a time, in the background.
func (n *Node) prebuild(changes []mirror.Change) {
	for _, ch := range changes {
		if err := n.encoder.Prebuild(ch.New.Digest, ch.Old.Digest); err != nil {
			n.log.Warn().Err(err).Str("path", ch.New.Path).Msg("building a delta ahead of requests failed")
		}
	}
}

// contentEncoder is the encoder the content port sends forms with; nil
// (identity) with encode-max 0, never a nil *contentcoding.Cache inside a
// non-nil interface.
func (n *Node) contentEncoder() server.Encoder {
	if n.encoder == nil {
		return nil
	}
	return n.encoder
}

// openOriginEncoder opens an origin's encoder in data-dir (origin-blobs/,
// encoded/, each under encode-max), when data-dir is an existing
// directory: an origin never creates it, and without it (or with
// encode-max 0) sends its files as they are, which it logs. nil (never a
// nil *origin.Encoder inside the interface): identity.
func (n *Node) openOriginEncoder(cfg Config, clk clock.Clock) server.Encoder {
	if cfg.EncodeMax <= 0 {
		return nil
	}
	if st, err := os.Stat(cfg.DataDir); err != nil || !st.IsDir() {
		n.log.Info().Str("data_dir", cfg.DataDir).Msg("origin sends identity only: data-dir is not an existing directory (give --data-dir DIR to send zstd and dcz)")
		return nil
	}
	enc, err := origin.OpenEncoder(cfg.DataDir, cfg.EncodeMax, n.log.With().Str("component", "encoding").Logger(), clk)
	if err != nil {
		n.log.Warn().Err(err).Msg("origin sends identity only")
		return nil
	}
	n.originEnc = enc
	return enc
}
