package server

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/cleanpath"
	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/events"
	"github.com/relayd/relayd/pkg/hops"
	"github.com/relayd/relayd/pkg/httpx"
	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/proxycache"
	"github.com/relayd/relayd/pkg/ratelog"
	"github.com/relayd/relayd/pkg/treeauth"
	"github.com/relayd/relayd/pkg/wire"
)

// Source finds objects by key: the origin directory or the proxy cache.
type Source interface {
	// Get returns the object for a cleanpath key; the caller closes it.
	Get(ctx context.Context, key string) (*object.Object, error)
}

// Readiness says whether the node should receive traffic; nil is ready.
type Readiness func() error

// MetadataFunc returns the TUF metadata file name (a name wire.TUFName
// accepts) the node serves at /-/tuf/<name>, or an error (a not-found
// error when it has none).
type MetadataFunc func(ctx context.Context, name string) (*object.Object, error)

// ContentConfig is what the content port serves.
type ContentConfig struct {
	// Source finds objects. Required.
	Source Source
	// Metadata serves /-/tuf/<name>; nil answers 404.
	Metadata MetadataFunc
	// Ready answers /-/readyz; nil is always ready.
	Ready Readiness
	// Relays answers /-/relays: the group's healthy relays, in a fresh
	// random order for every call. Required.
	Relays func() wire.Relays
	// Blob serves /-/blob/<hex> to group peers that are syncing (the
	// object's catalog path in the X-Relay-Blob-Path header); nil: 404.
	Blob func(ctx context.Context, d digest.Digest, path string, storedOnly bool) (*object.Object, error)
	// Group and MaxHops drive the loop guard: a request that has crossed
	// Group already, or MaxHops groups, is refused with 508.
	Group   string
	MaxHops int
	// OnLoop, if set, is told of every request refused as a loop that
	// proved to come from a relay of the tree (a signed report): an
	// operator's alert. OnClaimedLoop is told of the others (object
	// requests and streams, which anyone can send with an X-Relay-Path
	// naming this group): still refused with 508, only counted.
	OnLoop, OnClaimedLoop func(error)
	// Events serves /-/events; nil: 404.
	Events *events.Hub
	// Heartbeat is how often an idle event stream gets a ping. Default
	// DefaultHeartbeat.
	Heartbeat time.Duration
	// Report takes a child relay's POST /-/report; nil: 404.
	Report func(wire.Report) error
	// Outcome takes an agent's POST /-/outcome (outcome.go); nil: 404.
	Outcome OutcomeFunc
	// TreeAuth checks that a report or a stream claiming to be a child
	// relay's comes from a relay of the tree; nil refuses them all (401).
	TreeAuth *treeauth.Verifier
	// Behind reports whether the node has not made generation g live yet
	// (and starts catching up): a request carrying
	// wire.GenerationHeader g then gets 503, so the requester asks a
	// relay that has it. nil: the header is ignored (an origin).
	Behind func(g uint64) bool
	// Encoder, if set, sends verified objects as zstd or dcz deltas to
	// requests that accept them (coding.go); nil: identity always.
	Encoder Encoder
	// Closing, when closed, ends every event stream: the server is
	// shutting down and streams never end by themselves.
	Closing <-chan struct{}
	// Forward passes requests of other methods than GET and HEAD for
	// object paths (never /-/ ones) upstream (forward.go); nil, or an
	// answer of proxycache.ErrNotForwarded: 405.
	Forward Forwarder
}

// Content is the content port's router.
type Content struct {
	cfg     ContentConfig
	handler http.Handler
	objects http.Handler // object GETs and HEADs: handler's route for them
	// serving counts object responses in progress (not event streams);
	// served the body bytes of object responses; failed the object
	// requests answered with an error status.
	serving, served, failed atomic.Int64
	log                     zerolog.Logger
	reportSlots             chan struct{}    // one per report being decoded
	reporting               atomic.Int32     // reports decoding or waiting for a slot
	refusals                *ratelog.Limiter // log lines of refused control-plane requests
}

// NewContent builds the content-port handler.
func NewContent(cfg ContentConfig, log zerolog.Logger) *Content {
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	c := &Content{cfg: cfg, log: log, reportSlots: make(chan struct{}, maxReportDecodes),
		refusals: ratelog.New(clock.Real{}, ratelog.DefaultEvery)}
	r := chi.NewRouter()
	mw := []func(http.Handler) http.Handler{httpx.AccessLog(log, httpx.LogOptions{Done: c.count, Tag: tagVia}), boundBody}
	r.Use(mw...)
	notAllowed := httpx.MethodNotAllowed(r)
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		if c.cfg.Forward == nil || wire.IsAPI(req.URL.Path) {
			notAllowed(w, req)
			return
		}
		c.forward(w, req, notAllowed)
	})
	r.NotFound(Handle(func(http.ResponseWriter, *http.Request) error {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Msg: "no such endpoint"}
	}))
	// The reserved prefix is a router of its own: a path under it that
	// names no endpoint is 404 and a method it does not take 405, never an
	// object. Its routes are wire's paths less the prefix.
	r.Route(strings.TrimSuffix(wire.Prefix, "/"), func(r chi.Router) {
		api := func(path string) string { return "/" + strings.TrimPrefix(path, wire.Prefix) }
		r.Get(api(wire.HealthzPath), Handle(c.healthz))
		r.Head(api(wire.HealthzPath), Handle(c.healthz))
		r.Get(api(wire.ReadyzPath), Handle(c.readyz))
		r.Head(api(wire.ReadyzPath), Handle(c.readyz))
		r.Get(api(wire.TUFPath("{name}")), Handle(c.serveMetadata))
		r.Head(api(wire.TUFPath("{name}")), Handle(c.serveMetadata))
		r.Get(api(wire.BlobPath("{hex}")), Handle(c.serveBlob))
		r.Head(api(wire.BlobPath("{hex}")), Handle(c.serveBlob))
		r.Get(api(wire.RelaysPath), Handle(func(w http.ResponseWriter, _ *http.Request) error {
			// Agents must not cache the order: each call is a new shuffle.
			w.Header().Set("Cache-Control", "no-store")
			httpx.WriteJSON(w, http.StatusOK, c.cfg.Relays())
			return nil
		}))
		r.Get(api(wire.EventsPath), Handle(c.serveEvents))
		r.Post(api(wire.ReportPath), Handle(c.serveReport))
		r.Post(api(wire.OutcomePath), Handle(c.serveOutcome))
	})
	r.Get("/*", Handle(c.object))
	r.Head("/*", Handle(c.object))
	c.handler = r
	c.objects = chi.Chain(mw...).Handler(Handle(c.object))
	return c
}

// ServeHTTP serves the content port. Object GETs and HEADs, most of its
// traffic, go to the handler the router would choose for them, through
// the same middleware, without the router's four allocations per request
// (its context and path value); everything else goes through the router.
func (c *Content) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.URL.RawPath == "" && !strings.HasPrefix(r.URL.Path, "/-") {
		c.objects.ServeHTTP(w, r)
		return
	}
	c.handler.ServeHTTP(w, r)
}

// Routes returns the router, for listing its routes (api/openapi_test.go
// checks them against api/openapi.yaml).
func (c *Content) Routes() chi.Routes { return c.handler.(chi.Routes) }

// Failed returns how many object requests got an error status.
func (c *Content) Failed() int64 { return c.failed.Load() }

// BytesServed returns the body bytes of object responses sent so far.
func (c *Content) BytesServed() int64 { return c.served.Load() }

// count adds an object response (not /-/ API traffic) to the counters:
// its body bytes when it succeeded, a failure when it did not.
func (c *Content) count(r *http.Request, status int, bytes int64) {
	if wire.IsAPI(r.URL.Path) {
		return
	}
	switch {
	case status == httpx.StatusClientGone:
	case status >= 400:
		c.failed.Add(1)
	default:
		c.served.Add(bytes)
	}
}

// Serving returns how many object responses are in progress.
func (c *Content) Serving() int64 { return c.serving.Load() }

func (c *Content) healthz(w http.ResponseWriter, _ *http.Request) error {
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (c *Content) readyz(w http.ResponseWriter, _ *http.Request) error {
	if c.cfg.Ready != nil {
		if err := c.cfg.Ready(); err != nil {
			return &Error{Status: http.StatusServiceUnavailable, Code: "not_ready", Msg: "not ready", Err: err}
		}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

// object serves GET and HEAD of an object key.
func (c *Content) object(w http.ResponseWriter, r *http.Request) error {
	c.serving.Add(1)
	defer c.serving.Add(-1)
	key, err := objectKey(r)
	if err != nil {
		return err
	}
	ctx, err := c.guard(r, false)
	if err != nil {
		return err
	}
	if err := c.checkGeneration(r); err != nil {
		return err
	}
	// The client takes the upstream's interim responses (103 Early
	// Hints) of a fill it waits for.
	obj, err := c.cfg.Source.Get(proxycache.WithClient(ctx, r.Header, w), key)
	if err != nil {
		return err
	}
	obj, coded := c.encoded(r, obj)
	return serveObject(w, r, obj, coded)
}

// objectKey is the key of an object request: its clean path, then "?" and
// the raw query when there is one.
func objectKey(r *http.Request) (string, error) {
	key, err := cleanpath.Key(r.URL.EscapedPath())
	if err != nil {
		return "", err
	}
	if wire.Reserved(key) {
		// An encoded "/-%2F…" decodes into the reserved API prefix.
		return "", &Error{Status: http.StatusBadRequest, Code: "bad_path", Msg: "paths under /-/ are reserved for the relay API"}
	}
	if r.URL.RawQuery != "" {
		// The query is part of the key (the proxy cache drops it where
		// configured); a path whose decoded form holds "?" would be
		// taken for one.
		if strings.IndexByte(key, '?') >= 0 || len(r.URL.RawQuery) > cleanpath.MaxKeyLen {
			return "", &Error{Status: http.StatusBadRequest, Code: "bad_path", Msg: "a path with an encoded '?' and a query, or a query over 4096 bytes"}
		}
		key += "?" + r.URL.RawQuery
	}
	return key, nil
}

// guard applies the loop guard to a request and returns the context to
// serve it in: the groups it crossed, and whether a peer sent it. proven
// says the request's credential was checked (OnLoop) or not
// (OnClaimedLoop).
func (c *Content) guard(r *http.Request, proven bool) (context.Context, error) {
	ctx := r.Context()
	if r.Header.Get(wire.PeerHeader) != "" {
		ctx = proxycache.FromPeer(ctx)
	}
	path, err := hops.Parse(r.Header.Get(wire.PathHeader))
	if err != nil {
		return nil, err
	}
	if c.cfg.Group != "" {
		if err := hops.Check(path, c.cfg.Group, c.cfg.MaxHops); err != nil {
			on := c.cfg.OnClaimedLoop
			if proven {
				on = c.cfg.OnLoop
			}
			if on != nil {
				on(err)
			}
			return nil, err
		}
	}
	return hops.With(ctx, path), nil
}

// checkGeneration refuses a request that works from a catalog generation
// this relay has not made live yet.
func (c *Content) checkGeneration(r *http.Request) error {
	v := r.Header.Get(wire.GenerationHeader)
	if v == "" || c.cfg.Behind == nil {
		return nil
	}
	g, err := strconv.ParseUint(v, 10, 64)
	if err != nil || g == 0 {
		return &Error{Status: http.StatusBadRequest, Code: "bad_header", Msg: wire.GenerationHeader + " must be a generation number"}
	}
	if c.cfg.Behind(g) {
		return &Error{Status: http.StatusServiceUnavailable, Code: "generation_behind",
			Msg: "this relay has not completed generation " + v + " yet; ask another"}
	}
	return nil
}

// serveBlob answers a group peer's /-/blob/<hex>.
func (c *Content) serveBlob(w http.ResponseWriter, r *http.Request) error {
	if c.cfg.Blob == nil {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Msg: "this node serves no blobs to peers"}
	}
	d, err := digest.ParseHex(chi.URLParam(r, "hex"))
	if err != nil {
		return &Error{Status: http.StatusBadRequest, Code: "bad_path", Msg: "want /-/blob/<64 hex digits>"}
	}
	key, err := cleanpath.Key("/" + strings.TrimPrefix(r.Header.Get(wire.BlobPathHeader), "/"))
	if err != nil {
		return err
	}
	ctx, err := c.guard(r, false)
	if err != nil {
		return err
	}
	obj, err := c.cfg.Blob(ctx, d, key, r.Header.Get(wire.StoredOnlyHeader) != "")
	if err != nil {
		return err
	}
	return ServeObject(w, r, obj)
}

// serveMetadata answers /-/tuf/<name> with the node's TUF metadata:
// timestamp.json always revalidated, the versioned files immutable.
func (c *Content) serveMetadata(w http.ResponseWriter, r *http.Request) error {
	name := chi.URLParam(r, "name")
	if c.cfg.Metadata == nil || !wire.TUFName(name) {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Msg: "no such metadata file"}
	}
	ctx, err := c.guard(r, false)
	if err != nil {
		return err
	}
	if name == wire.TimestampName {
		if err := c.checkGeneration(r); err != nil {
			return err
		}
	}
	obj, err := c.cfg.Metadata(ctx, name)
	if err != nil {
		return err
	}
	// Whatever an upstream said of it (a plain proxy passes it on).
	h := obj.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if name == wire.TimestampName || name == wire.GatesName {
		// A new timestamp (new gates) replaces it at any time.
		h.Set("Cache-Control", "no-cache")
	} else {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	}
	obj.Header = h
	return ServeObject(w, r, obj)
}
