package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// serve answers with o as behaviour b says.
func (s *server) serve(w http.ResponseWriter, r *http.Request, o *object, b behaviour) {
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	switch b.name {
	case "endless":
		s.endless(w, r)
	case "drip":
		h.Set("ETag", o.etag)
		h.Set("Content-Length", strconv.Itoa(len(o.data)))
		w.WriteHeader(http.StatusOK)
		s.drip(w, r, o.data, b.tick)
	case "wrong":
		h.Set("ETag", o.etag)
		http.ServeContent(w, r, "", o.modTime, bytes.NewReader(tamper(o.data)))
	case "cut":
		h.Set("ETag", o.etag)
		http.ServeContent(&cutWriter{ResponseWriter: w, at: b.n}, r, "", o.modTime, bytes.NewReader(o.data))
	case "other", "other-length", "other-same-etag":
		data, etag := otherVersion(o, b.name)
		h.Set("ETag", etag)
		// Another version's server that ignores If-Range: the check
		// that would turn a mismatched resume into a 200 is skipped.
		r.Header.Del("If-Range")
		http.ServeContent(w, r, "", o.modTime, bytes.NewReader(data))
	default:
		h.Set("ETag", o.etag)
		http.ServeContent(w, r, "", o.modTime, bytes.NewReader(o.data))
	}
}

// tamper returns a copy of data with one byte in every 4 KiB (and the
// last one) changed: same length, another digest.
func tamper(data []byte) []byte {
	t := bytes.Clone(data)
	for i := 0; i < len(t); i += 4096 {
		t[i] ^= 0xff
	}
	if len(t) > 0 {
		t[len(t)-1] ^= 0xff
	}
	return t
}

// otherVersion is the other version of o: every byte changed, 4096 bytes
// longer for "other-length", and its ETag (the original's for
// "other-same-etag").
func otherVersion(o *object, name string) ([]byte, string) {
	data := make([]byte, len(o.data), len(o.data)+4096)
	for i, c := range o.data {
		data[i] = c ^ 0x5a
	}
	etag := `"other-` + strings.Trim(o.etag, `"`) + `"`
	switch name {
	case "other-length":
		data = append(data, bytes.Repeat([]byte{'v'}, 4096)...)
		etag = `"other-length-` + strings.Trim(o.etag, `"`) + `"`
	case "other-same-etag":
		etag = o.etag
	}
	return data, etag
}

// endless writes a body that never ends (no Content-Length) until the
// client goes away or endlessFor has passed. For TUF metadata it starts
// like a well-formed file and goes on with a list of hashes, so a reader
// that buffers the document before checking anything keeps buffering.
func (s *server) endless(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(w)
	var chunk []byte
	if strings.HasPrefix(r.URL.Path, "/-/tuf/") {
		_, _ = io.WriteString(w, `{"signed":{"_type":"timestamp","spec_version":"1.0.31","version":1,`+
			`"expires":"2036-01-01T00:00:00Z","meta":{"snapshot.json":{"version":1,"hashes":{`)
		var b bytes.Buffer
		for i := range 256 {
			fmt.Fprintf(&b, `"h%06d":"%064d",`, i, 0)
		}
		chunk = b.Bytes()
	} else {
		chunk = bytes.Repeat([]byte("endless "), 8<<10)
	}
	deadline := time.Now().Add(s.endlessFor)
	for time.Now().Before(deadline) {
		if _, err := w.Write(chunk); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// drip writes data one byte every tick, until done, the client goes
// away or endlessFor has passed.
func (s *server) drip(w http.ResponseWriter, r *http.Request, data []byte, tick time.Duration) {
	if r.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(w)
	t := time.NewTicker(tick)
	defer t.Stop()
	stop := time.NewTimer(s.endlessFor)
	defer stop.Stop()
	for i := range data {
		if _, err := w.Write(data[i : i+1]); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-stop.C:
			panic(http.ErrAbortHandler)
		}
	}
}

// cutWriter lets a response through up to object offset at, then aborts
// the connection (the client sees a short body).
type cutWriter struct {
	http.ResponseWriter
	at   int64
	left int64 // bytes still allowed; set by WriteHeader
	set  bool
}

func (c *cutWriter) WriteHeader(code int) {
	start := int64(0)
	if cr := c.Header().Get("Content-Range"); code == http.StatusPartialContent && cr != "" {
		// "bytes S-E/T"
		if s, _, ok := strings.Cut(strings.TrimPrefix(cr, "bytes "), "-"); ok {
			start, _ = strconv.ParseInt(s, 10, 64)
		}
	}
	c.left, c.set = c.at-start, true
	if c.left <= 0 {
		c.left = 1 << 62 // a response that starts past the cut is whole
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if !c.set {
		c.WriteHeader(http.StatusOK)
	}
	if int64(len(p)) <= c.left {
		c.left -= int64(len(p))
		return c.ResponseWriter.Write(p)
	}
	_, _ = c.ResponseWriter.Write(p[:c.left])
	c.left = 0
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
	panic(http.ErrAbortHandler)
}
