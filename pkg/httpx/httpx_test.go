package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// A handler that panics after the status line went out leaves the client
// with a broken response, never one that looks complete.
func TestPanicMidBodyAbortsTheResponse(t *testing.T) {
	t.Parallel()
	h := AccessLog(zerolog.New(zerolog.NewTestWriter(t)), LogOptions{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK) // chunked: no Content-Length
		_, _ = io.WriteString(w, "part of it")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush: %v", err)
		}
		panic("boom")
	}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("the body read as complete after a panic mid-response")
	}
}

// Errors answers with the JSON the classification gives, Retry-After on a
// 503, and the generic classification hides internal messages.
func TestErrorsAnswerJSON(t *testing.T) {
	t.Parallel()
	teapot := errors.New("teapot")
	custom := Errors{Classify: func(err error) (int, string, string) {
		if errors.Is(err, teapot) {
			return http.StatusTeapot, "teapot", "short and stout"
		}
		return Classify(err)
	}}
	for _, tc := range []struct {
		name       string
		e          Errors
		err        error
		status     int
		code, msg  string
		retryAfter string
	}{
		{"typed", Errors{}, &Error{Status: http.StatusNotFound, Code: "not_found", Msg: "no such endpoint"}, 404, "not_found", "no such endpoint", ""},
		{"busy", Errors{}, &Error{Status: http.StatusServiceUnavailable, Code: "busy", Msg: "busy", RetryAfter: 7}, 503, "busy", "busy", "7"},
		{"internal", Errors{}, errors.New("secret path /var/x"), 500, "internal", "internal error", ""},
		{"table", custom, teapot, http.StatusTeapot, "teapot", "short and stout", ""},
		{"wrapped typed", custom, &Error{Status: 400, Code: "bad", Msg: "bad"}, 400, "bad", "bad", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			tc.e.Handle(func(http.ResponseWriter, *http.Request) error { return tc.err })(w, httptest.NewRequest(http.MethodGet, "/x", nil))
			var body struct{ Error, Code string }
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if w.Code != tc.status || body.Code != tc.code || body.Error != tc.msg || w.Header().Get("Retry-After") != tc.retryAfter {
				t.Fatalf("got %d %+v Retry-After %q", w.Code, body, w.Header().Get("Retry-After"))
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
		})
	}
}

// A request whose client left is logged as 499 and gets no body.
func TestClientGoneIs499(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := httptest.NewRecorder()
	WriteError(w, httptest.NewRequest(http.MethodGet, "/x", nil).WithContext(ctx), context.Canceled)
	if w.Code != StatusClientGone || w.Body.Len() != 0 {
		t.Fatalf("got %d %q", w.Code, w.Body.String())
	}
}

// A header block over 32 KiB is answered 431 as JSON, before the handler.
func TestAccessLogRefusesHugeHeaders(t *testing.T) {
	t.Parallel()
	called := false
	h := AccessLog(zerolog.New(zerolog.NewTestWriter(t)), LogOptions{})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	r.Header.Set("X-Big", strings.Repeat("a", 40<<10))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusRequestHeaderFieldsTooLarge || called || !strings.Contains(w.Body.String(), "headers_too_large") {
		t.Fatalf("got %d %q, handler called %v", w.Code, w.Body.String(), called)
	}
}
