package server

import (
	"net/http"
	"time"
)

// requestBodyTimeout bounds the reading of a request body on the content
// port, which takes small API posts only (a report is at most 8 MiB).
const requestBodyTimeout = 60 * time.Second

// boundBody bounds, on HTTP/1, a request that comes with a body: reading
// the body gets requestBodyTimeout, the connection closes after the
// response (so a refused request is not kept open to drain its body: the
// server would read up to 256 KiB of it first, a byte at a time if the
// client drips it), and what is left unread is abandoned at once. GETs
// without a body, event streams among them, are not touched.
func boundBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 1 || r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		w.Header().Set("Connection", "close")
		_ = rc.SetReadDeadline(time.Now().Add(requestBodyTimeout))
		// The response is written before the server closes the body;
		// a deadline already past makes that close give up at once.
		defer func() { _ = rc.SetReadDeadline(time.Now()) }()
		next.ServeHTTP(w, r)
	})
}
