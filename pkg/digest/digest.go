package digest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"

	sha256 "github.com/minio/sha256-simd"
)

// Size is the length of a digest in bytes.
const Size = sha256.Size

// prefix names the algorithm in the text form.
const prefix = "sha256:"

// ErrInvalid is returned by Parse for text that is not "sha256:<64 hex>".
var ErrInvalid = errors.New("digest: invalid")

// Digest is the sha256 of an object's bytes. The zero value means "unknown".
type Digest [Size]byte

// NewHash returns the hash every digest in relayd is computed with. It is the
// single seam for the implementation (sha256-simd uses SHA-NI or AVX where the
// CPU has them).
func NewHash() hash.Hash { return sha256.New() }

// FromHash returns the digest a hash from NewHash has computed.
func FromHash(h hash.Hash) Digest {
	var d Digest
	h.Sum(d[:0])
	return d
}

// FromBytes returns the digest of b.
func FromBytes(b []byte) Digest { return Digest(sha256.Sum256(b)) }

// readBufs are FromReader's read buffers: 1 MiB, so that hashing a large
// file takes few read calls.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// FromReader returns the digest of everything r yields until EOF and how
// many bytes that was. An error is r's, unwrapped.
func FromReader(r io.Reader) (Digest, int64, error) {
	h := NewHash()
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	// Hide r's WriterTo (*os.File has one), which would copy in 32 KiB
	// reads and ignore the buffer.
	n, err := io.CopyBuffer(h, struct{ io.Reader }{r}, *bp)
	if err != nil {
		return Digest{}, n, err
	}
	return FromHash(h), n, nil
}

// Parse reads the text form "sha256:<64 lowercase or uppercase hex>".
func Parse(s string) (Digest, error) {
	var d Digest
	hexPart, ok := strings.CutPrefix(s, prefix)
	if !ok || len(hexPart) != 2*Size {
		return d, fmt.Errorf("%w: %q", ErrInvalid, s)
	}
	if _, err := hex.Decode(d[:], []byte(hexPart)); err != nil {
		return d, fmt.Errorf("%w: %q", ErrInvalid, s)
	}
	return d, nil
}

// ParseHex reads a bare 64-character hex digest (the form used in file names).
func ParseHex(s string) (Digest, error) { return Parse(prefix + s) }

// IsZero reports whether d is the unknown digest.
func (d Digest) IsZero() bool { return d == Digest{} }

// Hex is the bare lowercase hex form, used in blob file names.
func (d Digest) Hex() string { return hex.EncodeToString(d[:]) }

// String is the canonical text form "sha256:<hex>".
func (d Digest) String() string { return prefix + d.Hex() }

// ETag is the quoted strong entity tag relayd sends for an object whose
// digest it knows: "sha256:<hex>" in double quotes.
func (d Digest) ETag() string { return `"` + d.String() + `"` }

// FromETag returns the digest in an entity tag of the form relayd sends
// (strong, "sha256:<hex>"); ok is false for any other tag.
func FromETag(etag string) (Digest, bool) {
	// Other tags (a plain origin's, on every hit) are told apart before
	// Parse, whose error allocates.
	if len(etag) != len(prefix)+2*Size+2 || etag[0] != '"' || etag[len(etag)-1] != '"' || !strings.HasPrefix(etag[1:], prefix) {
		return Digest{}, false
	}
	d, err := Parse(etag[1 : len(etag)-1])
	return d, err == nil
}

// MarshalText writes the text form, so a Digest is a string in JSON.
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads the text form written by MarshalText.
func (d *Digest) UnmarshalText(b []byte) error {
	p, err := Parse(string(b))
	if err != nil {
		return err
	}
	*d = p
	return nil
}
