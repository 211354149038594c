package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
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

// Classify is the generic classification: an *Error as it says, anything
// else a 500 whose message is not passed to the client.
func Classify(err error) (status int, code, msg string) {
	if he := (*Error)(nil); errors.As(err, &he) {
		return he.Status, he.Code, he.Error()
	}
	return http.StatusInternalServerError, "internal", "internal error"
}

// StatusClientGone is logged for a request whose client went away before
// the answer (nginx's 499); it is never seen on the wire.
const StatusClientGone = 499

// Errors answers errors as Classify maps them (nil: the generic Classify).
type Errors struct {
	Classify func(error) (status int, code, msg string)
}

// WriteError answers with the JSON error for err and records it for the
// request's log line.
func (e Errors) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	classify := e.Classify
	if classify == nil {
		classify = Classify
	}
	status, code, msg := classify(err)
	li := Fields(r.Context())
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		// The client left while we waited (for a fill, a slot): not a
		// server error, and nobody reads an answer. Logged as nginx's 499.
		status, code = StatusClientGone, "client_gone"
		if li != nil {
			li.Err, li.Code = err, code
		}
		w.WriteHeader(status)
		return
	}
	if li != nil {
		li.Err, li.Code = err, code
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

// Handle adapts a HandlerFunc: a returned error becomes the JSON answer.
func (e Errors) Handle(h HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			e.WriteError(w, r, err)
		}
	}
}

// WriteError is Errors.WriteError with the generic classification.
func WriteError(w http.ResponseWriter, r *http.Request, err error) { Errors{}.WriteError(w, r, err) }

// HandlerFunc is a handler that returns its error instead of writing it.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handle is Errors.Handle with the generic classification.
func Handle(h HandlerFunc) http.HandlerFunc { return Errors{}.Handle(h) }

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
