// Reading a catalog file from the network: bounded before anything is
// allocated for it.
package catalog

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
)

// DefaultMaxBytes is the default cap on a catalog file read from the
// network (relays' catalog-max, agents' MaxCatalogBytes): 256 MiB.
//
// Measured on the output of `relayd publish` for a tree of realistic paths
// (security/2026/CVE-2026-12345/openssl-3.0.13-1.el9.x86_64.rpm,
// software/linux-amd64/1.2.3/…tar.gz, debian/pool/main/…deb; 61 bytes on
// average): 204 bytes per object, about 210 with 8-digit sizes. A catalog
// of 1M objects is then about 210 MB; 256 MiB holds 1M objects whose
// paths average up to about 120 bytes.
const DefaultMaxBytes = 256 << 20

// firstChunk and maxChunk bound the pieces a body of unknown length is
// read into: small first (most catalogs are small), then doubling up to
// maxChunk.
const (
	firstChunk = 64 << 10
	maxChunk   = 4 << 20
)

// Read reads a whole catalog file of at most limit bytes from r. size is
// the length the sender announced (an HTTP Content-Length), -1 if none.
//
// A size over limit is refused (ErrTooLarge) before a byte is read. A
// known size is read into one buffer of exactly that size. A body of
// unknown length is read in chunks of at most 4 MiB and never past
// limit+1 bytes: a body that does not end (or ends too late) is refused
// with ErrTooLarge having cost at most limit+4 MiB, and its bytes are
// dropped; only a body that ended within the limit is joined into the one
// slice returned. Memory therefore never grows with the body, only with
// the limit, and what a refused body took is handed back at once (see
// release).
func Read(r io.Reader, size, limit int64) ([]byte, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("catalog: read limit %d: want more than 0", limit)
	}
	if size > limit {
		return nil, fmt.Errorf("%w: %d bytes announced, the limit is %d", ErrTooLarge, size, limit)
	}
	if size >= 0 {
		return readSized(r, size)
	}
	return readUnsized(r, limit)
}

// readSized reads exactly size bytes and checks that nothing follows.
func readSized(r io.Reader, size int64) ([]byte, error) {
	// One byte of spare capacity receives what would follow the body.
	b := make([]byte, size, size+1)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		release(size)
		return nil, fmt.Errorf("catalog: read %d announced bytes: %w", size, err)
	}
	for {
		n, err := r.Read(b[size : size+1])
		if n > 0 {
			release(size)
			return nil, fmt.Errorf("%w: more than the %d bytes announced", ErrTooLarge, size)
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			release(size)
			return nil, fmt.Errorf("catalog: read: %w", err)
		}
	}
}

// readUnsized reads chunks until EOF or limit+1 bytes.
func readUnsized(r io.Reader, limit int64) ([]byte, error) {
	var (
		chunks [][]byte
		total  int64
		next   = int64(firstChunk)
	)
	for {
		// The last chunk may make room for one byte past the limit, to
		// tell a body of exactly limit bytes from a longer one.
		c := make([]byte, min(next, limit+1-total))
		next = min(2*next, maxChunk)
		n, err := io.ReadFull(r, c)
		total += int64(n)
		chunks = append(chunks, c[:n])
		if total > limit {
			chunks = nil
			release(total)
			return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			chunks = nil
			release(total)
			return nil, fmt.Errorf("catalog: read: %w", err)
		}
	}
	if len(chunks) == 1 {
		return chunks[0], nil
	}
	b := make([]byte, 0, total)
	for i, c := range chunks {
		b = append(b, c...)
		chunks[i] = nil // collectable as soon as it is copied
	}
	return b, nil
}

// ReadSigned reads a catalog file as Read does and verifies it with pub
// (Parse). A file that does not verify is released like a refused body:
// a hostile upstream that sends forged catalogs just under the limit, on
// every retry, costs one limit's worth of memory, not one per retry.
func ReadSigned(r io.Reader, size, limit int64, pub ed25519.PublicKey) (*Signed, error) {
	b, err := Read(r, size, limit)
	if err != nil {
		return nil, err
	}
	s, err := Parse(b, pub)
	if err != nil {
		n := int64(len(b))
		b = nil
		release(n)
		return nil, err
	}
	return s, nil
}

// releaseFrom is the size of a dropped body from which release hands the
// memory back at once.
const releaseFrom = 1 << 20

// release hands the memory of a dropped catalog body of n bytes back
// (a garbage collection, and the freed pages to the system) when it is
// large. Left to the collector's pacing it would pile up: the live heap
// measured while a body was read includes the body, so the next
// collection waits for several times that much garbage (five times on a
// relay, which runs at GOGC=400), and a parent or relay that sends an
// endless or forged catalog on every retry would raise the heap by as
// many bodies. A refused catalog is rare and costs a full read of up to
// the limit; one forced collection is small beside it.
func release(n int64) {
	if n >= releaseFrom {
		debug.FreeOSMemory()
	}
}
