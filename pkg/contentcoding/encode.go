package contentcoding

import (
	"fmt"
	"io"
	"math/bits"

	"github.com/klauspost/compress/zstd"

	"github.com/relayd/relayd/pkg/digest"
)

// Thresholds of what is worth sending encoded.
const (
	// SampleSize is how much of an object is compressed to judge it.
	SampleSize = 64 << 10
	// Incompressible is the compressed/original ratio of the sample (and
	// of the whole zstd form) above which identity is sent.
	Incompressible = 0.9
	// DeltaWorth is the delta/object ratio at or above which a delta is
	// not sent (zstd or identity is).
	DeltaWorth = 0.8
	// MinEncodeSize is the size below which objects are always sent as
	// they are: a frame's overhead eats what little there is to save.
	MinEncodeSize = 512
)

// Compressible reports whether the first SampleSize bytes of r compress
// below Incompressible of their size: a cheap test that keeps the CPU off
// archives and media.
func Compressible(r io.ReaderAt, size int64) (bool, error) {
	n := min(size, SampleSize)
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, 0); err != nil && !(err == io.EOF && n == size) {
		return false, fmt.Errorf("contentcoding: read sample: %w", err)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return false, err
	}
	defer enc.Close()
	out := enc.EncodeAll(buf, nil)
	return float64(len(out)) < Incompressible*float64(n), nil
}

// EncodeZstd writes the zstd form of r to w (default level, 8 MiB window,
// with the content size and a checksum in the frame).
func EncodeZstd(w io.Writer, r io.Reader, size int64) error {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return err
	}
	enc.ResetContentSize(w, size)
	return finish(enc, r)
}

// DeltaWindow is the zstd window a delta of a size-byte object against a
// dictLen-byte dictionary needs: every byte of the dictionary stays
// reachable to the end of the object. An error says it is over zstd's
// maximum (512 MiB).
func DeltaWindow(dictLen, size int64) (int, error) {
	need := uint64(dictLen + size)
	w := uint64(zstd.MinWindowSize)
	if need > w {
		w = 1 << bits.Len64(need-1)
	}
	if w > zstd.MaxWindowSize {
		return 0, fmt.Errorf("contentcoding: a delta of %d bytes against %d needs a %d-byte window, over zstd's %d", size, dictLen, w, zstd.MaxWindowSize)
	}
	return int(w), nil
}

// EncodeDelta writes the dcz form (RFC 9842) of r, size bytes, with dict as
// raw dictionary to w: the header naming digest.FromBytes(dict), then one
// zstd frame whose window reaches back over the whole dictionary.
func EncodeDelta(w io.Writer, r io.Reader, size int64, dict []byte) error {
	win, err := DeltaWindow(int64(len(dict)), size)
	if err != nil {
		return err
	}
	if _, err := w.Write(dczHeader(digest.FromBytes(dict))); err != nil {
		return err
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(deltaLevel(int64(len(dict))+size)),
		zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(win), zstd.WithEncoderDictRaw(0, dict))
	if err != nil {
		return err
	}
	enc.ResetContentSize(w, size)
	return finish(enc, r)
}

// deltaLevel is the encoder level of a delta over n bytes (dictionary and
// object): the best level's large match tables find the matches of a
// dictionary of many MiB (a 22 MB binary: 0.12x against 0.51x at the
// "better" level) but cost some 200 ms to set up, more than a small
// object takes to encode.
func deltaLevel(n int64) zstd.EncoderLevel {
	if n >= 4<<20 {
		return zstd.SpeedBestCompression
	}
	return zstd.SpeedBetterCompression
}

// finish copies r through enc and closes the frame.
func finish(enc *zstd.Encoder, r io.Reader) error {
	if _, err := enc.ReadFrom(r); err != nil {
		enc.Close()
		return fmt.Errorf("contentcoding: encode: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("contentcoding: encode: %w", err)
	}
	return nil
}
