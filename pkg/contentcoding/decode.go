package contentcoding

import (
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"

	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/wire"
)

// DefaultMaxWindow is the largest zstd window Decode accepts: a delta of a
// MaxDeltaObject object against a MaxDictionary dictionary needs at most
// this much.
const DefaultMaxWindow = 256 << 20

// Errors of a stream that does not decode to the expected length.
var (
	ErrTooLong  = errors.New("contentcoding: encoded stream yields more than the expected length")
	ErrTooShort = errors.New("contentcoding: encoded stream ends before the expected length")
	ErrCoding   = errors.New("contentcoding: unknown content coding")
)

// Decode returns the decoded bytes of r, encoded with coding ("zstd" or
// "dcz"; "" and "identity" pass r through), which must be exactly length
// bytes (the signed target's length): the reader fails with ErrTooLong as
// soon as the stream yields more, and with ErrTooShort when it ends
// earlier. For dcz, dict is the dictionary the request named; a header
// naming another is ErrDictionary. The window is bounded by
// DefaultMaxWindow. The caller closes the reader and still verifies the
// sha256 of what it read.
func Decode(r io.Reader, coding string, dict []byte, length int64) (io.ReadCloser, error) {
	return DecodeWindow(r, coding, dict, length, DefaultMaxWindow)
}

// DecodeWindow is Decode with a window bound of maxWindow bytes.
func DecodeWindow(r io.Reader, coding string, dict []byte, length int64, maxWindow uint64) (io.ReadCloser, error) {
	opts := []zstd.DOption{zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(maxWindow), zstd.WithDecoderMaxMemory(maxWindow)}
	switch coding {
	case "", "identity":
		return &exact{r: r, left: length}, nil
	case wire.CodingZstd:
	case wire.CodingDcz:
		if err := readDczHeader(r, digest.FromBytes(dict)); err != nil {
			return nil, err
		}
		opts = append(opts, zstd.WithDecoderDictRaw(0, dict))
	default:
		return nil, fmt.Errorf("%w %q", ErrCoding, coding)
	}
	dec, err := zstd.NewReader(r, opts...)
	if err != nil {
		return nil, fmt.Errorf("contentcoding: %s: %w", coding, err)
	}
	return &exact{r: dec, left: length, close: dec.Close}, nil
}

// exact yields exactly left bytes of r, or an error.
type exact struct {
	r     io.Reader
	left  int64
	close func()
}

func (e *exact) Read(p []byte) (int, error) {
	if e.left <= 0 {
		var one [1]byte
		n, err := io.ReadFull(e.r, one[:])
		switch {
		case n > 0:
			return 0, ErrTooLong
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return 0, io.EOF
		default:
			return 0, err
		}
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF {
		if e.left > 0 {
			return n, ErrTooShort
		}
		err = nil
	}
	return n, err
}

func (e *exact) Close() error {
	if e.close != nil {
		e.close()
		e.close = nil
	}
	return nil
}
