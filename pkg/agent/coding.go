package agent

// Encoded downloads (issue 16): a download that starts from its first
// byte asks for `Accept-Encoding: zstd`; a zstd answer is decoded with
// contentcoding.Decode, bounded by the signed length (more or fewer bytes
// are an error), and its decoded bytes go through the same size and
// sha256 checks as an identity body before anything is committed.
//
// An encoded stream is never resumed with Range: when it breaks, or does
// not decode, the download restarts, and after a decoding failure it asks
// for the identity form only (counted in Stats.CodingFallbacks). A resume
// of an identity download stays as it was.

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/relayd/relayd/pkg/contentcoding"
	"github.com/relayd/relayd/pkg/wire"
)

// errEncodedBreak: an encoded body broke or did not decode; the download
// starts over.
var errEncodedBreak = errors.New("encoded body broke")

// askCoding adds the request fields for an encoded answer to hdr when d
// starts from its first byte and has not been refused an encoded form.
func askCoding(d *download, hdr http.Header) {
	if d.off == 0 && !d.identity {
		hdr.Set("Accept-Encoding", wire.CodingZstd)
	}
}

// answerCoding is the content coding of an answer ("" for identity).
func answerCoding(resp *http.Response) string {
	c := strings.TrimSpace(strings.ToLower(resp.Header.Get("Content-Encoding")))
	if c == "identity" {
		return ""
	}
	return c
}

// decodedBody returns the identity bytes of an accepted answer: its body,
// or the body decoded. A coding the agent cannot read makes the next
// attempt ask for identity.
func (a *Agent) decodedBody(d *download, resp *http.Response) (*codedReader, error) {
	coding := answerCoding(resp)
	if coding == "" {
		return nil, nil
	}
	raw := &rawReader{r: resp.Body}
	dec, err := contentcoding.Decode(raw, coding, nil, d.obj.Size)
	if err != nil {
		a.refuseCoding(d)
		return nil, fmt.Errorf("%w: %s: %w", errEncodedBreak, d.obj.Path, err)
	}
	return &codedReader{dec: dec, raw: raw}, nil
}

// refuseCoding makes d's next attempts ask for the identity form.
func (a *Agent) refuseCoding(d *download) {
	if !d.identity {
		d.identity = true
		a.stats.codingFallbacks.Add(1)
	}
}

// receiveCoded is receive for an encoded body: any failure throws away
// what it wrote (an encoded stream is restarted, not resumed), and a
// failure of the decoder itself (not of the connection) makes the next
// attempt ask for the identity.
func (a *Agent) receiveCoded(d *download, cr *codedReader) error {
	defer cr.dec.Close()
	err := a.receive(d, cr)
	if err == nil && cr.err != nil {
		err = cr.err // every byte in, then more than the signed length
	}
	if err == nil {
		return nil
	}
	if cr.raw.err == nil || !errors.Is(err, cr.raw.err) {
		a.refuseCoding(d)
	}
	if rerr := a.restart(d); rerr != nil {
		return rerr
	}
	return fmt.Errorf("%w: %s: %w", errEncodedBreak, d.obj.Path, err)
}

// rawReader remembers the error of the encoded bytes' reader (the
// connection), to tell it from a decoding failure.
type rawReader struct {
	r   io.Reader
	err error
}

func (r *rawReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// codedReader is a decoded body; err is its reading error (not io.EOF).
type codedReader struct {
	dec io.ReadCloser
	raw *rawReader
	err error
}

func (c *codedReader) Read(p []byte) (int, error) {
	n, err := c.dec.Read(p)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}
