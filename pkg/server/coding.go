package server

// Encoded responses (issue 16): an object whose identity is a verified
// blob (its ETag is its sha256) is sent as zstd or as a dcz delta against
// a blob the requester holds, when the request accepts it and the encoder
// has (or builds) that form. Everything else is sent as it is.

import (
	"net/http"
	"slices"
	"strings"

	"github.com/relayd/relayd/pkg/contentcoding"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/wire"
)

// Encoder finds or builds encoded forms of stored blobs
// (*contentcoding.Cache).
type Encoder interface {
	// Get returns the best form of blob d that a allows, or nil for
	// identity; the caller closes the form's File.
	Get(d digest.Digest, a contentcoding.Accept) (*contentcoding.Form, error)
}

var _ Encoder = (*contentcoding.Cache)(nil)

// DigestEncoder is an Encoder for objects whose ETag is not their sha256
// (an origin's files): it learns the digest itself, only for a request
// that accepts an encoded answer.
type DigestEncoder interface {
	Encoder
	// Digest returns the sha256 of obj's bytes (read without consuming
	// obj), or false to send obj as it is.
	Digest(obj *object.Object) (digest.Digest, bool)
}

// encoded returns obj, or an encoded form of it that the request accepts
// (obj is then closed), and whether the response says in Vary that it
// may be encoded (serveObject adds the coding fields: the hit path copies
// no header for it). A conditional request (If-None-Match,
// If-Modified-Since) is answered about the identity, so a child
// revalidating what it stores gets its 304.
func (c *Content) encoded(r *http.Request, obj *object.Object) (*object.Object, bool) {
	if c.cfg.Encoder == nil || (obj.Status != 0 && obj.Status != http.StatusOK) || obj.Header.Get("Content-Encoding") != "" {
		return obj, false
	}
	d, ok := digest.FromETag(obj.ETag)
	de, learns := c.cfg.Encoder.(DigestEncoder)
	if !ok && !learns {
		return obj, false
	}
	a := contentcoding.ParseAccept(r.Header.Get("Accept-Encoding"), r.Header.Get(wire.AvailableDictionaryHeader))
	conditional := r.Header.Get("If-None-Match") != "" || r.Header.Get("If-Modified-Since") != ""
	if (!a.Zstd && !a.Dcz) || conditional {
		return obj, true
	}
	if !ok {
		if d, ok = de.Digest(obj); !ok {
			return obj, true
		}
	}
	f, err := c.cfg.Encoder.Get(d, a)
	if err != nil {
		c.log.Warn().Err(err).Str("key", obj.Key).Msg("encoded form failed; sending identity")
	}
	if f == nil {
		return obj, true
	}
	h := obj.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h["Content-Encoding"] = []string{f.Coding}
	tag := "+" + f.Coding
	if f.Coding == wire.CodingDcz {
		tag += "-" + f.Dict.Hex()[:16]
	}
	enc := &object.Object{Key: obj.Key, Size: f.Size, ETag: strings.TrimSuffix(obj.ETag, `"`) + tag + `"`,
		LastModified: obj.LastModified, Header: h, Cache: obj.Cache, Age: obj.Age, UpstreamTime: obj.UpstreamTime,
		Body: &object.FileBody{R: f.File, File: f.File, N: f.Size}}
	_ = obj.Close()
	return enc, true
}

// codedVary is the Vary of a response that may be encoded and whose
// upstream sent none (shared, read-only: len == cap).
var codedVary = []string{wire.CodedVary}

// addCodedVary adds the coding fields to the Vary of h, whose values may
// be shared with a stored object's header: never appended to in place.
func addCodedVary(h http.Header) {
	if v := h["Vary"]; len(v) > 0 {
		h["Vary"] = append(slices.Clip(v), wire.CodedVary)
		return
	}
	h["Vary"] = codedVary
}
