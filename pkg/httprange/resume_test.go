package httprange

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// response builds a response with the given status and headers (pairs).
func response(status int, contentLength int64, kv ...string) *http.Response {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return &http.Response{StatusCode: status, Header: h, ContentLength: contentLength}
}

func TestPinResponse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		resp   *http.Response
		want   Pin
		reason Reason // 0: pinned
	}{
		{"200 strong", response(200, 1000, "Etag", `"v1"`), Pin{`"v1"`, 1000}, 0},
		{"200 empty body", response(200, 0, "Etag", `"v1"`), Pin{`"v1"`, 0}, 0},
		{"206 strong", response(206, 100, "Etag", `"v1"`, "Content-Range", "bytes 0-99/1000"), Pin{`"v1"`, 1000}, 0},
		{"spaces trimmed", response(200, 10, "Etag", ` "v1" `), Pin{`"v1"`, 10}, 0},
		{"no etag", response(200, 1000, "Last-Modified", "Mon, 07 Dec 2026 10:00:00 GMT"), Pin{}, ReasonNoETag},
		{"weak etag", response(200, 1000, "Etag", `W/"v1"`), Pin{}, ReasonWeakETag},
		{"unquoted etag", response(200, 1000, "Etag", `v1`), Pin{}, ReasonNoETag},
		{"quote inside", response(200, 1000, "Etag", `"v"1"`), Pin{}, ReasonNoETag},
		{"two etags", response(200, 1000, "Etag", `"v1"`, "Etag", `"v2"`), Pin{}, ReasonNoETag},
		{"200 unknown length", response(200, -1, "Etag", `"v1"`), Pin{}, ReasonLength},
		{"206 unknown length", response(206, 100, "Etag", `"v1"`, "Content-Range", "bytes 0-99/*"), Pin{}, ReasonLength},
		{"206 bad content-range", response(206, 100, "Etag", `"v1"`, "Content-Range", "bytes 0-99"), Pin{}, ReasonContentRange},
		{"304", response(304, -1, "Etag", `"v1"`), Pin{}, ReasonStatus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := PinResponse(tc.resp)
			if tc.reason == 0 {
				if err != nil || p != tc.want {
					t.Fatalf("PinResponse = %+v, %v; want %+v", p, err, tc.want)
				}
				if !p.Valid() {
					t.Fatalf("%+v is not Valid", p)
				}
				return
			}
			var re *RefusedError
			if !errors.As(err, &re) || re.Reason != tc.reason || !errors.Is(err, ErrRefused) {
				t.Fatalf("PinResponse = %+v, %v; want refusal %s", p, err, tc.reason)
			}
		})
	}
}

func TestPinHeader(t *testing.T) {
	t.Parallel()
	p := Pin{ETag: `"v1"`, Size: 1000}
	h := http.Header{"Range": {"bytes=0-1"}, "If-Range": {"Mon, 07 Dec 2026 10:00:00 GMT"}}
	p.Header(h, 400, -1)
	if h.Get("Range") != "bytes=400-" || h.Get("If-Range") != `"v1"` || len(h.Values("Range")) != 1 {
		t.Fatalf("to the end: %v", h)
	}
	p.Header(h, 400, 499)
	if h.Get("Range") != "bytes=400-499" {
		t.Fatalf("bounded: %v", h)
	}
}

func TestPinCheck(t *testing.T) {
	t.Parallel()
	p := Pin{ETag: `"v1"`, Size: 1000}
	for _, tc := range []struct {
		name      string
		resp      *http.Response
		off, last int64
		reason    Reason // 0: accepted
	}{
		{"same representation", response(206, 600, "Etag", `"v1"`, "Content-Range", "bytes 400-999/1000"), 400, -1, 0},
		{"bounded", response(206, 100, "Etag", `"v1"`, "Content-Range", "bytes 400-499/1000"), 400, 499, 0},
		{"shorter than asked", response(206, 100, "Etag", `"v1"`, "Content-Range", "bytes 400-499/1000"), 400, -1, 0},
		{"200: new version or Range ignored", response(200, 1000, "Etag", `"v1"`), 400, -1, ReasonStatus},
		{"416", response(416, 0, "Content-Range", "bytes */1000"), 400, -1, ReasonStatus},
		{"another etag", response(206, 600, "Etag", `"v2"`, "Content-Range", "bytes 400-999/1000"), 400, -1, ReasonETag},
		{"no etag", response(206, 600, "Content-Range", "bytes 400-999/1000"), 400, -1, ReasonNoETag},
		{"weak etag", response(206, 600, "Etag", `W/"v1"`, "Content-Range", "bytes 400-999/1000"), 400, -1, ReasonWeakETag},
		{"last-modified alone", response(206, 600, "Last-Modified", "Mon, 07 Dec 2026 10:00:00 GMT", "Content-Range", "bytes 400-999/1000"), 400, -1, ReasonNoETag},
		{"another length", response(206, 800, "Etag", `"v1"`, "Content-Range", "bytes 400-1199/1200"), 400, -1, ReasonLength},
		{"shorter length", response(206, 100, "Etag", `"v1"`, "Content-Range", "bytes 400-499/500"), 400, -1, ReasonLength},
		{"unknown length", response(206, 600, "Etag", `"v1"`, "Content-Range", "bytes 400-999/*"), 400, -1, ReasonLength},
		{"another offset", response(206, 700, "Etag", `"v1"`, "Content-Range", "bytes 300-999/1000"), 400, -1, ReasonOffset},
		{"past the range asked", response(206, 600, "Etag", `"v1"`, "Content-Range", "bytes 400-999/1000"), 400, 499, ReasonOffset},
		{"no content-range", response(206, 600, "Etag", `"v1"`), 400, -1, ReasonContentRange},
		{"multipart", response(206, 600, "Etag", `"v1"`, "Content-Type", "multipart/byteranges; boundary=x"), 400, -1, ReasonContentRange},
		{"two content-ranges", response(206, 600, "Etag", `"v1"`, "Content-Range", "bytes 400-999/1000", "Content-Range", "bytes 0-9/1000"), 400, -1, ReasonContentRange},
		{"bad content-range", response(206, 600, "Etag", `"v1"`, "Content-Range", "bytes 999-400/1000"), 400, -1, ReasonContentRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := p.Check(tc.resp, tc.off, tc.last)
			if tc.reason == 0 {
				if err != nil {
					t.Fatalf("Check = %v, want accepted", err)
				}
				return
			}
			var re *RefusedError
			if !errors.As(err, &re) || re.Reason != tc.reason || !errors.Is(err, ErrRefused) {
				t.Fatalf("Check = %v, want refusal %s", err, tc.reason)
			}
			if re.Error() == "" || re.Reason.String() == "" {
				t.Fatal("empty message")
			}
		})
	}
}

func TestReasonString(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for r := ReasonStatus; r <= ReasonOffset; r++ {
		s := r.String()
		if s == "" || seen[s] {
			t.Fatalf("reason %d: %q (empty or repeated)", r, s)
		}
		seen[s] = true
	}
	if Reason(200).String() != "reason(200)" {
		t.Fatal(Reason(200).String())
	}
}

// FuzzPinCheck: whatever the answer's ETag and Content-Range, Check
// accepts only the pinned ETag and length at the offset asked.
func FuzzPinCheck(f *testing.F) {
	f.Add(`"v1"`, "bytes 400-999/1000", int64(400), int64(-1))
	f.Add(`W/"v1"`, "bytes 400-999/1000", int64(400), int64(-1))
	f.Add(`"v1"`, "bytes 400-499/1000", int64(400), int64(499))
	f.Add(`"v1"`, "bytes 0-9/*", int64(0), int64(-1))
	p := Pin{ETag: `"v1"`, Size: 1000}
	f.Fuzz(func(t *testing.T, etag, cr string, off, last int64) {
		resp := response(206, -1, "Etag", etag, "Content-Range", cr)
		if p.Check(resp, off, last) != nil {
			return
		}
		rng, total, err := ParseContentRange(cr)
		if err != nil || strings.TrimSpace(etag) != p.ETag || total != p.Size || rng.Start != off || rng.End() >= p.Size {
			t.Fatalf("accepted ETag %q, Content-Range %q for %+v at %d-%d", etag, cr, p, off, last)
		}
		if last >= 0 && last < p.Size && rng.End() > last {
			t.Fatalf("accepted %q past the last byte asked, %d", cr, last)
		}
	})
}
