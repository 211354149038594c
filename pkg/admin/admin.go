// The admin API's server side: the router and its handlers.
package admin

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/httpx"
)

// StatusFunc returns the node's status document.
type StatusFunc func() Status

// Syncer is the node's mirror, as the sync endpoints see it.
type Syncer interface {
	// Trigger asks for a sync now.
	Trigger()
	// Progress returns the progress document of the current or last sync.
	Progress() SyncProgress
}

// Config is what the admin API serves.
type Config struct {
	Status   StatusFunc
	Registry *prometheus.Registry
	// Token, when not empty, is required as a bearer token.
	Token string
	// Sync is nil on nodes without a mirror (the sync endpoints answer 404).
	Sync Syncer
	// Members returns the /v1/members document, or an error to answer.
	Members func() (Members, error)
	// Tree returns the /v1/tree document: this relay's group and every
	// group below it.
	Tree func() GroupView
	// Agents returns the /v1/agents document: the agents and child
	// relays holding an event stream open to this relay.
	Agents func() Agents
	// Cache serves /v1/cache; nil answers 404 (an origin).
	Cache Cache
	// Compliance serves /v1/compliance; nil answers 404 (compliance.go).
	Compliance ComplianceFunc
	// Rollout serves /v1/rollout; nil answers 404.
	Rollout Rollout
}

// Cache is the node's cache as the cache endpoints see it. Errors are
// answered as they classify (httpx.Error carries status and code).
type Cache interface {
	// ListCache returns a page of cached objects with the path prefix,
	// after the path after, at most limit, only pinned ones if asked.
	ListCache(prefix, after string, limit int, pinnedOnly bool) (CacheList, error)
	// CacheStats returns objects, bytes, hit ratio, bytes served and
	// from upstream.
	CacheStats() (CacheStats, error)
	// DeleteCached removes one cached object.
	DeleteCached(path string) error
	// Pin exempts cached objects from eviction (or lifts it).
	Pin(paths []string, unpin bool) (PinResult, error)
	// Prefetch starts warming the paths and the catalog paths matching
	// include, at background priority; PrefetchProgress follows it.
	Prefetch(paths, include []string) (PrefetchStatus, error)
	PrefetchProgress() PrefetchStatus
}

// New builds the admin handler.
func New(cfg Config, log zerolog.Logger) http.Handler {
	reg := cfg.Registry
	r := chi.NewRouter()
	r.Use(httpx.AccessLog(log, httpx.LogOptions{}))
	if cfg.Token != "" {
		r.Use(requireToken(cfg.Token))
	}
	r.NotFound(httpx.Handle(func(http.ResponseWriter, *http.Request) error {
		return &httpx.Error{Status: http.StatusNotFound, Code: "not_found", Msg: "no such endpoint"}
	}))
	r.MethodNotAllowed(httpx.MethodNotAllowed(r))
	routeState(r, cfg)
	routeCompliance(r, cfg.Compliance)
	r.Route("/v1/cache", func(r chi.Router) { routeCache(r, cfg.Cache) })
	routeRollout(r, cfg.Rollout)
	// Profiles for diagnosing a live relay; the admin port is loopback or
	// token-protected.
	r.Get("/debug/pprof/*", pprof.Index)
	r.Get("/debug/pprof/profile", pprof.Profile)
	r.Get("/debug/pprof/trace", pprof.Trace)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return r
}

// routeState routes the node's state documents and the sync endpoints.
func routeState(r chi.Router, cfg Config) {
	status := cfg.Status
	r.Get("/v1/status", func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, status())
	})
	r.Get("/v1/members", httpx.Handle(func(w http.ResponseWriter, _ *http.Request) error {
		doc, err := cfg.Members()
		if err != nil {
			return err
		}
		httpx.WriteJSON(w, http.StatusOK, doc)
		return nil
	}))
	r.Get("/v1/tree", func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, cfg.Tree())
	})
	r.Get("/v1/agents", func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, cfg.Agents())
	})
	r.Get("/v1/sync", httpx.Handle(func(w http.ResponseWriter, _ *http.Request) error {
		if cfg.Sync == nil {
			return errNoMirror
		}
		httpx.WriteJSON(w, http.StatusOK, cfg.Sync.Progress())
		return nil
	}))
	r.Post("/v1/sync", httpx.Handle(func(w http.ResponseWriter, _ *http.Request) error {
		if cfg.Sync == nil {
			return errNoMirror
		}
		cfg.Sync.Trigger()
		httpx.WriteJSON(w, http.StatusAccepted, Accepted{Status: "sync requested"})
		return nil
	}))
}

// routeCache routes /v1/cache; every endpoint answers 404 without a cache.
func routeCache(r chi.Router, cache Cache) {
	r.Use(func(next http.Handler) http.Handler {
		return httpx.Handle(func(w http.ResponseWriter, r *http.Request) error {
			if cache == nil {
				return errNoCache
			}
			next.ServeHTTP(w, r)
			return nil
		})
	})
	r.Get("/", httpx.Handle(func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		limit := 0
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return &httpx.Error{Status: http.StatusBadRequest, Code: "bad_limit", Msg: "limit must be a positive number"}
			}
			limit = n
		}
		doc, err := cache.ListCache(q.Get("prefix"), q.Get("after"), limit, q.Get("pinned") == "true")
		if err != nil {
			return err
		}
		httpx.WriteJSON(w, http.StatusOK, doc)
		return nil
	}))
	r.Get("/stats", httpx.Handle(func(w http.ResponseWriter, _ *http.Request) error {
		doc, err := cache.CacheStats()
		if err != nil {
			return err
		}
		httpx.WriteJSON(w, http.StatusOK, doc)
		return nil
	}))
	r.Get("/prefetch", func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, cache.PrefetchProgress())
	})
	r.Post("/prefetch", httpx.Handle(func(w http.ResponseWriter, r *http.Request) error {
		var req PrefetchRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		doc, err := cache.Prefetch(req.Paths, req.Include)
		if err != nil {
			return err
		}
		httpx.WriteJSON(w, http.StatusAccepted, doc)
		return nil
	}))
	r.Post("/pin", httpx.Handle(func(w http.ResponseWriter, r *http.Request) error {
		var req PinRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		if len(req.Paths) == 0 {
			return &httpx.Error{Status: http.StatusBadRequest, Code: "no_paths", Msg: "give the paths to pin"}
		}
		doc, err := cache.Pin(req.Paths, req.Unpin)
		if err != nil {
			return err
		}
		httpx.WriteJSON(w, http.StatusOK, doc)
		return nil
	}))
	r.Delete("/*", httpx.Handle(func(w http.ResponseWriter, r *http.Request) error {
		if err := cache.DeleteCached(chi.URLParam(r, "*")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}))
}

var errNoCache = &httpx.Error{Status: http.StatusNotFound, Code: "no_cache", Msg: "this node keeps no cache (origin mode)"}

// maxBody bounds a JSON request body (a prefetch of 100,000 paths).
const maxBody = 16 << 20

// decodeJSON reads a JSON request body into v.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/json" {
			return &httpx.Error{Status: http.StatusUnsupportedMediaType, Code: "bad_content_type", Msg: "want Content-Type: application/json"}
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &httpx.Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Msg: "request body larger than 16 MiB"}
		}
		return &httpx.Error{Status: http.StatusBadRequest, Code: "bad_json", Msg: "request body is not the expected JSON", Err: err}
	}
	return nil
}

var errNoMirror = &httpx.Error{Status: http.StatusNotFound, Code: "no_mirror", Msg: "this node does not mirror a catalog (no --root trusted root, or origin mode)"}

// requireToken checks "Authorization: Bearer <token>" in constant time.
func requireToken(token string) func(http.Handler) http.Handler {
	want := []byte(token)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got, ok := bearerToken(r.Header.Get("Authorization"))
			if !ok || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="relayd"`)
				httpx.WriteError(w, r, &httpx.Error{Status: http.StatusUnauthorized, Code: "unauthorized", Msg: "missing or wrong admin token"})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// bearerToken returns the token of an Authorization value of the Bearer
// scheme. The scheme is case-insensitive and may be followed by more than
// one space (RFC 9110 section 11.1: credentials = auth-scheme 1*SP
// token68); the token itself is compared as sent.
func bearerToken(h string) (string, bool) {
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok := strings.TrimLeft(rest, " ")
	return tok, tok != ""
}
