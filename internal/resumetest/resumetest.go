package resumetest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/relayd/relayd/pkg/httprange"
)

// Answer writes an upstream's answer to a resume from byte off.
type Answer func(w http.ResponseWriter, off int64)

// Partial answers 206 with data from off and etag (none if empty),
// whatever the request's If-Range says.
func Partial(w http.ResponseWriter, etag string, data []byte, off int64) {
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	size := int64(len(data))
	w.Header().Set("Content-Range", httprange.Range{Start: off, Length: size - off}.ContentRange(size))
	w.Header().Set("Content-Length", strconv.FormatInt(size-off, 10))
	w.WriteHeader(http.StatusPartialContent)
	_, _ = w.Write(data[off:])
}

// Whole answers 200 with all of data and etag.
func Whole(w http.ResponseWriter, etag string, data []byte) {
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

// Mismatched are the 206s of an upstream holding other (another version
// of the object pinned with etag) that ignores If-Range, by name: its own
// ETag; the pinned ETag but another length; no ETag; the pinned ETag made
// weak. None of them may continue the pinned transfer.
func Mismatched(etag string, other []byte) map[string]Answer {
	longer := append(bytes.Clone(other), bytes.Repeat([]byte{'v'}, 4096)...)
	return map[string]Answer{
		"another etag":   func(w http.ResponseWriter, off int64) { Partial(w, `"another-version"`, other, off) },
		"another length": func(w http.ResponseWriter, off int64) { Partial(w, etag, longer, off) },
		"no etag":        func(w http.ResponseWriter, off int64) { Partial(w, "", other, off) },
		"weak etag":      func(w http.ResponseWriter, off int64) { Partial(w, "W/"+etag, other, off) },
	}
}

// Server is an upstream holding another version: it answers a GET
// without Range 503 (so a client with another upstream goes there first)
// and a ranged GET with its Answer.
type Server struct {
	*httptest.Server
	ranged atomic.Int64
}

// NewServer starts a Server on 127.0.0.1 for a representation of size
// bytes; the test's cleanup stops it.
func NewServer(t testing.TB, size int64, answer Answer) *Server {
	t.Helper()
	s := &Server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rng, err := httprange.Parse(r.Header.Get("Range"), size)
		if r.Header.Get("Range") == "" || err != nil || len(rng) != 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		s.ranged.Add(1)
		answer(w, rng[0].Start)
	}))
	t.Cleanup(s.Close)
	return s
}

// Ranged is how many ranged GETs the server answered.
func (s *Server) Ranged() int64 { return s.ranged.Load() }
