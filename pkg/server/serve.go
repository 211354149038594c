package server

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/relayd/relayd/pkg/httprange"
	"github.com/relayd/relayd/pkg/httpx"
	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/wire"
)

// ServeObject answers r with obj: conditional requests (RFC 9110 §13),
// a single byte range (§14; several ranges or an unknown size get the
// whole object), HEAD. A failure after the status line aborts the
// connection so the client sees an incomplete response, never a complete
// wrong one. It closes obj.
func ServeObject(w http.ResponseWriter, r *http.Request, obj *object.Object) error {
	return serveObject(w, r, obj, false)
}

// serveObject is ServeObject; coded adds the coding fields to Vary (the
// object may be sent encoded).
func serveObject(w http.ResponseWriter, r *http.Request, obj *object.Object, coded bool) error {
	defer obj.Close()
	if li := httpx.Fields(r.Context()); li != nil {
		li.Key, li.Cache, li.Upstream = obj.Key, obj.Cache, obj.UpstreamTime
	}
	small := obj.Size >= 0 && obj.Size <= object.SmallObject
	verifiedRange := obj.VerifiedRanges && r.Header.Get("Range") != "" && ifRange(r, obj)
	if obj.Verified != nil && (small || verifiedRange) {
		if err := obj.Verified(r.Context()); err != nil {
			return err
		}
	}
	h := w.Header()
	objectHeader(h, obj)
	if coded {
		addCodedVary(h)
	}
	if obj.Status != 0 && obj.Status != http.StatusOK {
		return servePassed(w, r, obj)
	}
	if notModified(r, obj) {
		for _, k := range []string{"Content-Type", "Content-Encoding", "Content-Length", "Content-Disposition", "Content-Language"} {
			h.Del(k)
		}
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	size := obj.Size
	start, length, status := int64(0), size, http.StatusOK
	if size >= 0 {
		h["Accept-Ranges"] = acceptBytes
		if rh := r.Header.Get("Range"); rh != "" && ifRange(r, obj) {
			ranges, err := httprange.Parse(rh, size)
			switch {
			case errors.Is(err, httprange.ErrUnsatisfiable):
				h.Set("Content-Range", httprange.UnsatisfiedContentRange(size))
				return &Error{Status: http.StatusRequestedRangeNotSatisfiable, Code: "bad_range", Msg: "range not satisfiable for " + strconv.FormatInt(size, 10) + " bytes"}
			case err == nil && len(ranges) == 1:
				start, length, status = ranges[0].Start, ranges[0].Length, http.StatusPartialContent
				h.Set("Content-Range", ranges[0].ContentRange(size))
			}
			// A malformed header or several ranges: the whole object
			// (RFC 9110 lets a server ignore Range).
		}
		h["Content-Length"] = []string{strconv.FormatInt(length, 10)}
	}
	if r.Method != http.MethodHead && size >= 0 && whole(obj) {
		if c := coalescer(r); c != nil {
			c.Coalesce()
			defer release(w, c)
		}
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return nil
	}
	if _, err := obj.Body.CopyTo(r.Context(), w, start, length); err != nil {
		if li := httpx.Fields(r.Context()); li != nil {
			li.Err = err
			li.Code = "aborted"
			if clientGone(r, err) {
				li.Code = "client_gone"
			}
		}
		panic(http.ErrAbortHandler)
	}
	return nil
}

// objectHeader sets the response fields of obj: its own, its validators,
// the cache result and its age.
func objectHeader(h http.Header, obj *object.Object) {
	for k, v := range obj.Header {
		h[k] = v
	}
	if obj.ETag != "" {
		h["Etag"] = []string{obj.ETag}
	}
	if _, set := h["Last-Modified"]; !set && !obj.LastModified.IsZero() {
		h["Last-Modified"] = []string{obj.LastModified.UTC().Format(http.TimeFormat)}
	}
	if obj.Cache != "" {
		h[wire.CacheHeader] = cacheValue(obj.Cache)
	}
	if obj.Age != "" {
		h["Age"] = []string{obj.Age}
	}
	if _, set := h["Content-Type"]; !set {
		h["Content-Type"] = nil // as the upstream sent it: none, not a guess
	}
}

// Field values every hit sends, shared by all responses (read-only, len ==
// cap: nobody appends to them in place; net/http copies the header map
// when it writes the header).
var (
	acceptBytes = []string{"bytes"}
	cacheValues = map[string][]string{object.Hit: {object.Hit}, object.Miss: {object.Miss},
		object.Revalidated: {object.Revalidated}, object.Peer: {object.Peer}, object.Stale: {object.Stale}}
)

// cacheValue is the X-Relay-Cache field value of result.
func cacheValue(result string) []string {
	if v, ok := cacheValues[result]; ok {
		return v
	}
	return []string{result}
}

// servePassed sends a response of another status than 200 as the
// upstream sent it: no Range, no conditional (RFC 9110 §13.2.1 evaluates
// them only for 2xx), the body whole.
func servePassed(w http.ResponseWriter, r *http.Request, obj *object.Object) error {
	h := w.Header()
	h.Del("Etag") // set above for a 200's conditionals; the stored field stays
	if v := obj.Header["Etag"]; len(v) > 0 {
		h["Etag"] = v
	}
	body := r.Method != http.MethodHead && obj.Status != http.StatusNoContent && obj.Status != http.StatusNotModified
	if obj.Size >= 0 && body {
		h.Set("Content-Length", strconv.FormatInt(obj.Size, 10))
	}
	w.WriteHeader(obj.Status)
	if !body {
		return nil
	}
	if _, err := obj.Body.CopyTo(r.Context(), w, 0, -1); err != nil {
		if li := httpx.Fields(r.Context()); li != nil {
			li.Err, li.Code = err, "aborted"
		}
		panic(http.ErrAbortHandler)
	}
	return nil
}

// clientGone reports whether a copy failed because the client left, which
// is routine, rather than because the source failed.
func clientGone(r *http.Request, err error) bool {
	return r.Context().Err() != nil || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// notModified evaluates If-None-Match, or If-Modified-Since without it.
func notModified(r *http.Request, obj *object.Object) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		return obj.ETag != "" && etagListMatch(inm, obj.ETag)
	}
	ims := r.Header.Get("If-Modified-Since")
	if ims == "" || obj.LastModified.IsZero() {
		return false
	}
	t, err := http.ParseTime(ims)
	return err == nil && !obj.LastModified.Truncate(time.Second).After(t)
}

// etagListMatch is the weak comparison of If-None-Match (RFC 9110 §13.1.2).
func etagListMatch(list, etag string) bool {
	etag = strings.TrimPrefix(etag, "W/")
	for part := range strings.SplitSeq(list, ",") {
		part = strings.TrimSpace(part)
		if part == "*" || strings.TrimPrefix(part, "W/") == etag {
			return true
		}
	}
	return false
}

// ifRange reports whether a Range may be honoured under If-Range: only
// when the validator still matches (strong comparison for entity tags).
func ifRange(r *http.Request, obj *object.Object) bool {
	ir := strings.TrimSpace(r.Header.Get("If-Range"))
	if ir == "" {
		return true
	}
	if strings.HasPrefix(ir, `"`) {
		return obj.ETag != "" && ir == obj.ETag
	}
	t, err := http.ParseTime(ir)
	return err == nil && !obj.LastModified.IsZero() && obj.LastModified.Truncate(time.Second).Equal(t)
}
