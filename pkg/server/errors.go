package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/relayd/relayd/pkg/cleanpath"
	"github.com/relayd/relayd/pkg/hierarchy"
	"github.com/relayd/relayd/pkg/hops"
	"github.com/relayd/relayd/pkg/mirror"
	"github.com/relayd/relayd/pkg/origin"
	"github.com/relayd/relayd/pkg/proxycache"
	"github.com/relayd/relayd/pkg/store"
)

// Error is an error with the HTTP status and code it is answered with.
type Error struct {
	Status int
	Code   string
	Msg    string
	Err    error
	// RetryAfter is the Retry-After of a 503, in seconds; 0: 1.
	RetryAfter int
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// classify maps an error to the status, code and message a client gets.
// Messages of internal errors are not passed to clients.
func classify(err error) (status int, code, msg string) {
	var he *Error
	switch {
	case errors.As(err, &he):
		return he.Status, he.Code, he.Error()
	case errors.Is(err, hops.ErrLoop), errors.Is(err, hops.ErrTooMany):
		return http.StatusLoopDetected, "loop", err.Error()
	case errors.Is(err, hops.ErrBad):
		return http.StatusBadRequest, "bad_header", err.Error()
	case errors.Is(err, cleanpath.ErrBadPath):
		return http.StatusBadRequest, "bad_path", err.Error()
	case errors.Is(err, proxycache.ErrCatalogUnavailable):
		return http.StatusServiceUnavailable, "catalog_unavailable", "no verified catalog yet: objects are refused until one is loaded"
	case errors.Is(err, proxycache.ErrNotInCatalog):
		return http.StatusNotFound, "not_in_catalog", "not listed in the signed catalog"
	case errors.Is(err, proxycache.ErrNotFound), errors.Is(err, origin.ErrNotFound), errors.Is(err, store.ErrNotFound),
		errors.Is(err, mirror.ErrNotFound):
		return http.StatusNotFound, "not_found", "not found"
	case errors.Is(err, mirror.ErrNoCatalog):
		return http.StatusServiceUnavailable, "not_ready", "no complete generation yet"
	case errors.Is(err, store.ErrTooLarge):
		return http.StatusInsufficientStorage, "too_large", "the object is larger than the relay's cache quota"
	case errors.Is(err, store.ErrNoSpace):
		return http.StatusInsufficientStorage, "disk_full", "the relay's disk is full"
	case errors.Is(err, proxycache.ErrBusy):
		return http.StatusServiceUnavailable, "busy", "relay busy, retry shortly"
	case errors.Is(err, proxycache.ErrDigestMismatch):
		return http.StatusBadGateway, "digest_mismatch", "upstream sent bytes that do not match their digest"
	case errors.Is(err, hierarchy.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "upstream_timeout", "upstream timed out"
	case errors.Is(err, hierarchy.ErrNoUpstream):
		return http.StatusBadGateway, "no_upstream", "no upstream configured"
	case errors.Is(err, proxycache.ErrUpstream), errors.Is(err, hierarchy.ErrUnavailable):
		return http.StatusBadGateway, "upstream_failed", "upstream failed"
	default:
		return http.StatusInternalServerError, "internal", "internal error"
	}
}

// statusClientGone is logged for a request whose client went away before
// the answer (nginx's 499); it is never seen on the wire.
const statusClientGone = 499

// WriteError answers with the JSON error for err and records it for the
// request's log line.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := classify(err)
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		// The client left while we waited (for a fill, a slot): not a
		// server error, and nobody reads an answer. Logged as nginx's 499.
		status, code = statusClientGone, "client_gone"
		if li := logInfo(r.Context()); li != nil {
			li.err, li.code = err, code
		}
		w.WriteHeader(status)
		return
	}
	if li := logInfo(r.Context()); li != nil {
		li.err = err
		li.code = code
	}
	h := w.Header()
	for _, k := range []string{"Etag", "Last-Modified", "Cache-Control", "Expires", "Accept-Ranges", "Content-Encoding", "Content-Disposition"} {
		h.Del(k)
	}
	if status == http.StatusServiceUnavailable {
		retry := 1
		if he := (*Error)(nil); errors.As(err, &he) && he.RetryAfter > 0 {
			retry = he.RetryAfter
		}
		h.Set("Retry-After", strconv.Itoa(retry))
	}
	WriteJSON(w, status, map[string]string{"error": msg, "code": code})
}

// MethodNotAllowed is a router's 405 handler: the JSON error, with Allow
// listing the methods routes has for the path (RFC 9110 §15.5.6).
func MethodNotAllowed(routes chi.Routes) http.HandlerFunc {
	return Handle(func(w http.ResponseWriter, r *http.Request) error {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if routes.Match(chi.NewRouteContext(), m, r.URL.Path) {
				allow = append(allow, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		return &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Msg: r.Method + " not allowed"}
	})
}

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error","code":"internal"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// HandlerFunc is a handler that returns its error instead of writing it.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handle adapts a HandlerFunc: a returned error becomes the JSON answer.
func Handle(h HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			WriteError(w, r, err)
		}
	}
}
