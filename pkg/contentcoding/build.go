package contentcoding

import (
	"io"
	"os"

	"github.com/relayd/relayd/pkg/digest"
)

// buildZstd writes the zstd form of blob d to tmp; false when it is not
// worth it (small, incompressible sample, or the whole form not below
// Incompressible of the object).
func (c *Cache) buildZstd(tmp *os.File, d digest.Digest) (bool, error) {
	r, err := c.blobs.OpenBlob(d)
	if err != nil {
		return false, err
	}
	defer r.Close()
	if r.Size < MinEncodeSize {
		return false, nil
	}
	ok, err := Compressible(r, r.Size)
	if err != nil || !ok {
		return false, err
	}
	cw := &countWriter{w: tmp}
	if err := EncodeZstd(cw, io.NewSectionReader(r, 0, r.Size), r.Size); err != nil {
		return false, err
	}
	return float64(cw.n) < Incompressible*float64(r.Size), nil
}

// buildDelta writes the dcz form of blob d against blob dict to tmp; false
// when it is not worth it (over a limit, or not below DeltaWorth of the
// object).
func (c *Cache) buildDelta(tmp *os.File, d, dict digest.Digest) (bool, error) {
	r, err := c.blobs.OpenBlob(d)
	if err != nil {
		return false, err
	}
	defer r.Close()
	old, err := c.blobs.OpenBlob(dict)
	if err != nil {
		return false, err
	}
	defer old.Close()
	if r.Size < MinEncodeSize || r.Size > c.cfg.MaxDeltaObject || old.Size > c.cfg.MaxDictionary {
		return false, nil
	}
	dictBytes, err := ReadBlob(c.blobs, dict, c.cfg.MaxDictionary)
	if err != nil {
		return false, err
	}
	cw := &countWriter{w: tmp}
	if err := EncodeDelta(cw, io.NewSectionReader(r, 0, r.Size), r.Size, dictBytes); err != nil {
		return false, err
	}
	return float64(cw.n) < DeltaWorth*float64(r.Size), nil
}

// countWriter counts what passes.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
