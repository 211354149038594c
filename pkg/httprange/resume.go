// Resuming a transfer with Range: one validity check for every place that
// continues a broken body, so that bytes of two representations are never
// spliced into one.
package httprange

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// ErrRefused is what every *RefusedError matches with errors.Is: a
// response that must not be pinned or continued.
var ErrRefused = errors.New("httprange: resume refused")

// Reason says why a response cannot be pinned or cannot continue a pinned
// transfer.
type Reason uint8

// The reasons, each a label of the refusal metrics.
const (
	// ReasonStatus: not a 206 to a resume (a 200 is a new version, or an
	// upstream that ignores Range), or neither 200 nor 206 to pin.
	ReasonStatus Reason = iota + 1
	// ReasonNoETag: no ETag, or one that does not parse.
	ReasonNoETag
	// ReasonWeakETag: a weak ETag (W/"…") does not identify the bytes.
	ReasonWeakETag
	// ReasonETag: another ETag than the pinned one: another version.
	ReasonETag
	// ReasonContentRange: a 206 without a single Content-Range that parses.
	ReasonContentRange
	// ReasonLength: another complete length than the pinned one, or an
	// unknown one.
	ReasonLength
	// ReasonOffset: the range starts elsewhere than the bytes asked for,
	// or ends past them.
	ReasonOffset
)

var reasonNames = [...]string{
	ReasonStatus:       "status",
	ReasonNoETag:       "no_etag",
	ReasonWeakETag:     "weak_etag",
	ReasonETag:         "etag",
	ReasonContentRange: "content_range",
	ReasonLength:       "length",
	ReasonOffset:       "offset",
}

// String is the reason as a short label, e.g. "weak_etag".
func (r Reason) String() string {
	if int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// RefusedError is a response refused for a resume, and why.
type RefusedError struct {
	Reason Reason
	// Got and Want are what the response said and what was pinned or
	// asked for, for the message.
	Got, Want string
}

func (e *RefusedError) Error() string {
	msg := "httprange: resume refused: " + e.Reason.String()
	if e.Got != "" || e.Want != "" {
		msg += ": got " + quoteEmpty(e.Got) + ", want " + quoteEmpty(e.Want)
	}
	return msg
}

// Is makes every RefusedError match ErrRefused.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

func quoteEmpty(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func refuse(r Reason, got, want string) error { return &RefusedError{Reason: r, Got: got, Want: want} }

// Pin is the representation a transfer is made of: its strong entity tag
// and its complete length. Only a 206 of that same representation may
// continue the transfer.
//
// Last-Modified is never enough (it has a one-second resolution and is not
// a promise of identical bytes), nor is a weak ETag: a response without a
// strong ETag and a known length is not resumable and starts over from
// byte 0.
type Pin struct {
	// ETag is the strong entity tag, quotes included, e.g. `"sha256:…"`.
	ETag string
	// Size is the complete length in bytes.
	Size int64
}

// PinResponse pins the representation of a first response: a 200 (its
// Content-Length is the size) or a 206 (the complete length of its
// Content-Range). It returns a *RefusedError when the response cannot be
// resumed.
func PinResponse(resp *http.Response) (Pin, error) {
	etag, err := strongETag(resp.Header)
	if err != nil {
		return Pin{}, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if resp.ContentLength < 0 {
			return Pin{}, refuse(ReasonLength, "unknown", "")
		}
		return Pin{ETag: etag, Size: resp.ContentLength}, nil
	case http.StatusPartialContent:
		_, total, err := ParseContentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			return Pin{}, refuse(ReasonContentRange, resp.Header.Get("Content-Range"), "")
		}
		if total < 0 {
			return Pin{}, refuse(ReasonLength, "unknown", "")
		}
		return Pin{ETag: etag, Size: total}, nil
	}
	return Pin{}, refuse(ReasonStatus, strconv.Itoa(resp.StatusCode), "200 or 206")
}

// Valid reports whether p can pin a resume: a strong ETag and a length.
func (p Pin) Valid() bool { return p.Size >= 0 && isStrongETag(p.ETag) }

// Header sets the request headers that ask for bytes off..last
// (inclusive; last < 0: to the end) of the pinned representation and for
// nothing else: Range, and If-Range with the pinned ETag, so that an
// upstream holding another version answers 200 instead.
func (p Pin) Header(h http.Header, off, last int64) {
	b := make([]byte, 0, len("bytes=-")+40)
	b = append(b, "bytes="...)
	b = strconv.AppendInt(b, off, 10)
	b = append(b, '-')
	if last >= 0 {
		b = strconv.AppendInt(b, last, 10)
	}
	h.Set("Range", string(b))
	h.Set("If-Range", p.ETag)
}

// Check accepts resp as the continuation of the pinned representation at
// off (asked for with Header(h, off, last)) only when it is a 206 with the
// pinned strong ETag whose Content-Range starts at off, ends at last at
// the latest (last < 0: at the end) and has the pinned complete length.
// Anything else is a *RefusedError: the caller must not append its bytes.
func (p Pin) Check(resp *http.Response, off, last int64) error {
	if resp.StatusCode != http.StatusPartialContent {
		return refuse(ReasonStatus, strconv.Itoa(resp.StatusCode), "206")
	}
	etag, err := strongETag(resp.Header)
	if err != nil {
		return err
	}
	if etag != p.ETag {
		return refuse(ReasonETag, etag, p.ETag)
	}
	cr := resp.Header.Get("Content-Range")
	if len(resp.Header.Values("Content-Range")) != 1 {
		return refuse(ReasonContentRange, cr, "one Content-Range")
	}
	rng, total, err := ParseContentRange(cr)
	if err != nil {
		return refuse(ReasonContentRange, cr, "bytes first-last/complete")
	}
	if total != p.Size {
		got := "unknown"
		if total >= 0 {
			got = strconv.FormatInt(total, 10)
		}
		return refuse(ReasonLength, got, strconv.FormatInt(p.Size, 10))
	}
	if last < 0 || last >= p.Size {
		last = p.Size - 1
	}
	if rng.Start != off || rng.End() > last {
		return refuse(ReasonOffset, cr, "bytes "+strconv.FormatInt(off, 10)+"-"+strconv.FormatInt(last, 10))
	}
	return nil
}

// strongETag returns the response's ETag if it is strong.
func strongETag(h http.Header) (string, error) {
	vs := h.Values("Etag")
	if len(vs) == 0 {
		return "", refuse(ReasonNoETag, "", "a strong ETag")
	}
	v := strings.TrimSpace(vs[0])
	switch {
	case len(vs) > 1:
		return "", refuse(ReasonNoETag, strings.Join(vs, ", "), "one ETag")
	case strings.HasPrefix(v, "W/"):
		return "", refuse(ReasonWeakETag, v, "a strong ETag")
	case !isStrongETag(v):
		return "", refuse(ReasonNoETag, v, "a strong ETag")
	}
	return v, nil
}

// isStrongETag reports whether v is a strong entity-tag (RFC 9110 §8.8.3):
// DQUOTE *etagc DQUOTE, etagc being %x21 / %x23-7E / obs-text.
func isStrongETag(v string) bool {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return false
	}
	for i := 1; i < len(v)-1; i++ {
		if c := v[i]; c == '"' || c < 0x21 || c == 0x7f {
			return false
		}
	}
	return true
}
