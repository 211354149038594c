package agent

// Encoded downloads (issue 16): a download that starts from its first
// byte asks for `Accept-Encoding: zstd`, and for dcz (RFC 9842) with
// Available-Dictionary naming the version of the path the agent wrote
// (the state's digest, while the file's size and modification time are
// as recorded and it is at most contentcoding.DefaultMaxDictionary
// bytes; it is hashed again when a dcz answer uses it). An answer is
// decoded with
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

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/contentcoding"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/wire"
)

// errEncodedBreak: an encoded body broke or did not decode; the download
// starts over.
var errEncodedBreak = errors.New("encoded body broke")

// askCoding adds the request fields for an encoded answer to hdr when d
// starts from its first byte and has not been refused an encoded form.
func askCoding(d *download, hdr http.Header) {
	switch {
	case d.off != 0 || d.identity:
	case !d.dict.IsZero() && d.dict != d.obj.Digest && d.loadDict != nil:
		hdr.Set("Accept-Encoding", wire.CodingDcz+", "+wire.CodingZstd)
		hdr.Set(wire.AvailableDictionaryHeader, contentcoding.FormatAvailableDictionary(d.dict))
	default:
		hdr.Set("Accept-Encoding", wire.CodingZstd)
	}
}

// dictionaryFor returns the version of obj's path that the agent wrote
// into out (its digest, and a loader that reads it whole and checks that
// digest), or a zero digest when there is none to offer.
func (a *Agent) dictionaryFor(out sink, obj catalog.Object) (digest.Digest, func() ([]byte, error)) {
	fsk, ok := out.(*fileSink)
	rec, known := a.state.file(obj.Path)
	if !ok || !known || rec.SHA256 == obj.Digest || rec.Size <= 0 || rec.Size > contentcoding.DefaultMaxDictionary {
		return digest.Digest{}, nil
	}
	fi, err := fsk.root.Lstat(fsk.final)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != rec.Size || fi.ModTime().UnixNano() != rec.MTime {
		return digest.Digest{}, nil
	}
	return rec.SHA256, func() ([]byte, error) {
		f, err := fsk.root.Open(fsk.final)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, rec.Size+1))
		if err != nil {
			return nil, err
		}
		if int64(len(b)) != rec.Size || digest.FromBytes(b) != rec.SHA256 {
			return nil, fmt.Errorf("%s changed since the agent wrote it", obj.Path)
		}
		return b, nil
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
	var dict []byte
	if coding == wire.CodingDcz {
		var err error
		if d.loadDict == nil {
			err = errors.New("a dcz answer to a request without a dictionary")
		} else {
			dict, err = d.loadDict()
		}
		if err != nil {
			a.refuseCoding(d)
			return nil, fmt.Errorf("%w: %s: dictionary: %w", errEncodedBreak, d.obj.Path, err)
		}
	}
	raw := &rawReader{r: resp.Body}
	dec, err := contentcoding.Decode(raw, coding, dict, d.obj.Size)
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
