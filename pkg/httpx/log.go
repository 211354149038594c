package httpx

import (
	"context"
	"errors"
	"io"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/rs/zerolog"
)

// LogFields collects what the handlers learn about a request for its one
// log line.
type LogFields struct {
	// Key is the object's key; Cache its X-Relay-Cache result.
	Key   string
	Cache string
	// Upstream is how long the upstream took to answer a fill.
	Upstream time.Duration
	// Err and Code are the error answered (or that broke the response).
	Err  error
	Code string
}

type ctxKey struct{}

// Fields returns the request's log fields; nil outside AccessLog.
func Fields(ctx context.Context) *LogFields {
	li, _ := ctx.Value(ctxKey{}).(*LogFields)
	return li
}

// responseWriter records status and bytes. It keeps http.ResponseWriter's
// io.ReaderFrom, so sendfile still reaches the connection.
type responseWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 { // a 1xx is interim: the status comes after it
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r) // HTTP/1: sendfile reaches the connection
	} else {
		// HTTP/2's writer has no ReadFrom; hide ours from io.Copy.
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
	}
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// maxHeaderBytes is the largest request header block served; larger gets
// 431. The http.Server's own limit is set above it so that this check,
// with its JSON answer, is the one that fires.
const maxHeaderBytes = 32 << 10

// LogOptions adds a port's own parts to the access log.
type LogOptions struct {
	// Done, if set, is told each request's status and body bytes (for
	// counters), after its line is logged.
	Done func(r *http.Request, status int, bytes int64)
	// Tag, if set, adds the port's own fields to a request's line.
	Tag func(r *http.Request, ev *zerolog.Event) *zerolog.Event
}

// AccessLog logs each request once, at the end, with what the handlers
// recorded; it also answers oversized headers with 431 and turns a panic
// into a 500 (or an aborted connection) plus one error line.
func AccessLog(log zerolog.Logger, o LogOptions) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			li := &LogFields{}
			r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, li))
			rw := &responseWriter{ResponseWriter: w}
			aborted := false
			defer func() {
				p := recover()
				if p != nil {
					aborted = true
					if p != http.ErrAbortHandler {
						log.Error().Interface("panic", p).Bytes("stack", debug.Stack()).Str("path", r.URL.Path).Msg("handler panic")
						if rw.status == 0 {
							WriteError(rw, r, errors.New("panic"))
						} else {
							// Part of the response is out: the client
							// must see it broken, not complete.
							p = http.ErrAbortHandler
						}
					}
				}
				status := rw.status
				if status == 0 {
					status = http.StatusOK
				}
				lvl := zerolog.InfoLevel
				if status >= 500 || (aborted && li.Code != "client_gone") {
					lvl = zerolog.WarnLevel
				}
				ev := log.WithLevel(lvl).Str("method", r.Method).Str("path", r.URL.EscapedPath()).
					Int("status", status).Int64("bytes", rw.bytes).Dur("dur", time.Since(start)).Str("remote", r.RemoteAddr)
				if li.Cache != "" {
					ev = ev.Str("cache", li.Cache)
				}
				if o.Tag != nil {
					ev = o.Tag(r, ev)
				}
				if li.Upstream > 0 {
					ev = ev.Dur("upstream", li.Upstream)
				}
				if li.Err != nil {
					ev = ev.Str("code", li.Code).AnErr("error", li.Err)
				}
				if aborted {
					ev = ev.Bool("aborted", true)
				}
				ev.Msg("request")
				if o.Done != nil {
					o.Done(r, status, rw.bytes)
				}
				if p == http.ErrAbortHandler {
					panic(p)
				}
			}()
			if headerSize(r) > maxHeaderBytes {
				WriteError(rw, r, &Error{Status: http.StatusRequestHeaderFieldsTooLarge, Code: "headers_too_large", Msg: "request headers exceed 32 KiB"})
				return
			}
			next.ServeHTTP(rw, r)
		})
	}
}

func headerSize(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}
