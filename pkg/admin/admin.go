// Package admin is the admin port's HTTP API (/v1/…, /metrics): what an
// operator and the `relayd` admin commands talk to. It is bound to
// loopback unless a bearer token protects it.
//
// It reads the node's state through small interfaces; it changes nothing
// on its own.
package admin

import (
	"crypto/subtle"
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/server"
)

// StatusFunc returns the node's status document.
type StatusFunc func() any

// Syncer is the node's mirror, as the sync endpoints see it.
type Syncer interface {
	// Trigger asks for a sync now.
	Trigger()
	// Progress returns the progress document of the current or last sync.
	Progress() any
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
	Members func() (any, error)
	// Tree returns the /v1/tree document: this relay's group and every
	// group below it.
	Tree func() any
	// Agents returns the /v1/agents document: the agents and child
	// relays holding an event stream open to this relay.
	Agents func() any
}

// New builds the admin handler.
func New(cfg Config, log zerolog.Logger) http.Handler {
	status, reg := cfg.Status, cfg.Registry
	r := chi.NewRouter()
	r.Use(server.AccessLog(log))
	if cfg.Token != "" {
		r.Use(requireToken(cfg.Token))
	}
	r.NotFound(server.Handle(func(http.ResponseWriter, *http.Request) error {
		return &server.Error{Status: http.StatusNotFound, Code: "not_found", Msg: "no such endpoint"}
	}))
	r.Get("/v1/status", func(w http.ResponseWriter, _ *http.Request) {
		server.WriteJSON(w, http.StatusOK, status())
	})
	r.Get("/v1/members", server.Handle(func(w http.ResponseWriter, _ *http.Request) error {
		doc, err := cfg.Members()
		if err != nil {
			return err
		}
		server.WriteJSON(w, http.StatusOK, doc)
		return nil
	}))
	r.Get("/v1/tree", func(w http.ResponseWriter, _ *http.Request) {
		server.WriteJSON(w, http.StatusOK, cfg.Tree())
	})
	r.Get("/v1/agents", func(w http.ResponseWriter, _ *http.Request) {
		server.WriteJSON(w, http.StatusOK, cfg.Agents())
	})
	r.Get("/v1/sync", server.Handle(func(w http.ResponseWriter, _ *http.Request) error {
		if cfg.Sync == nil {
			return errNoMirror
		}
		server.WriteJSON(w, http.StatusOK, cfg.Sync.Progress())
		return nil
	}))
	r.Post("/v1/sync", server.Handle(func(w http.ResponseWriter, _ *http.Request) error {
		if cfg.Sync == nil {
			return errNoMirror
		}
		cfg.Sync.Trigger()
		server.WriteJSON(w, http.StatusAccepted, map[string]string{"status": "sync requested"})
		return nil
	}))
	// Profiles for diagnosing a live relay; the admin port is loopback or
	// token-protected.
	r.HandleFunc("/debug/pprof/*", pprof.Index)
	r.HandleFunc("/debug/pprof/profile", pprof.Profile)
	r.HandleFunc("/debug/pprof/trace", pprof.Trace)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return r
}

var errNoMirror = &server.Error{Status: http.StatusNotFound, Code: "no_mirror", Msg: "this node does not mirror a catalog (no --pubkey, or origin mode)"}

// requireToken checks "Authorization: Bearer <token>" in constant time.
func requireToken(token string) func(http.Handler) http.Handler {
	want := []byte(token)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="relayd"`)
				server.WriteError(w, r, &server.Error{Status: http.StatusUnauthorized, Code: "unauthorized", Msg: "missing or wrong admin token"})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
