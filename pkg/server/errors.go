package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/cleanpath"
	"github.com/relayd/relayd/pkg/hierarchy"
	"github.com/relayd/relayd/pkg/hops"
	"github.com/relayd/relayd/pkg/httpx"
	"github.com/relayd/relayd/pkg/mirror"
	"github.com/relayd/relayd/pkg/origin"
	"github.com/relayd/relayd/pkg/proxycache"
	"github.com/relayd/relayd/pkg/store"
	"github.com/relayd/relayd/pkg/wire"
)

// Error is httpx.Error: the content server's handlers return it.
type Error = httpx.Error

// classify maps an error to the status, code and message a client gets.
// Messages of internal errors are not passed to clients.
func classify(err error) (status int, code, msg string) {
	var he *Error
	switch {
	case errors.As(err, &he):
		return httpx.Classify(err)
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
	case errors.Is(err, proxycache.ErrOnlyIfCached):
		return http.StatusGatewayTimeout, "not_cached", "not in the cache, and the request said only-if-cached"
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

// errs answers errors by the table of classify.
var errs = httpx.Errors{Classify: classify}

// WriteError answers with the JSON error for err, classified by the
// content server's table, and records it for the request's log line.
func WriteError(w http.ResponseWriter, r *http.Request, err error) { errs.WriteError(w, r, err) }

// Handle adapts a handler of the content port: a returned error becomes
// the JSON answer, classified by the content server's table.
func Handle(h httpx.HandlerFunc) http.HandlerFunc { return errs.Handle(h) }

// tagVia adds to a request's log line which relay asked (relay-to-relay
// requests): the groups it crossed, and the node from its User-Agent.
func tagVia(r *http.Request, ev *zerolog.Event) *zerolog.Event {
	if via := r.Header.Get(wire.PathHeader); via != "" {
		ev = ev.Str("via", via).Str("ua", r.UserAgent())
	}
	return ev
}

// AsError returns err as the *Error the content server's table makes of
// it, for another port that answers the same errors (the admin port,
// which classifies only *Error): nil stays nil, an *Error and an error
// the table does not know (a 500 anywhere) stay as they are.
func AsError(err error) error {
	if err == nil {
		return nil
	}
	if he := (*Error)(nil); errors.As(err, &he) {
		return err
	}
	status, code, msg := classify(err)
	if status == http.StatusInternalServerError {
		return err
	}
	return &Error{Status: status, Code: code, Msg: msg}
}
