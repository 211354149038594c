// Reading a catalog file from the network: bounded before anything is
// allocated for it.
package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
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

// memHead is how much of a body of unknown length is read into memory
// before the rest goes to a spool file: most catalogs are smaller and
// never touch the disk.
const memHead = 1 << 20

// Read reads a whole catalog file of at most limit bytes from r. size is
// the length the sender announced (an HTTP Content-Length), -1 if none.
// spoolDir is where a body of unknown length longer than 1 MiB is spooled
// ("" for os.TempDir; os.TempDir too if spoolDir cannot take the file).
//
// A size over limit is refused (ErrTooLarge) before a byte is read. A
// known size is read into one buffer of exactly that size. A body of
// unknown length is read into memory up to 1 MiB; past that it is copied
// to an unlinked temp file in spoolDir, never past limit+1 bytes, and
// only a body that ended within the limit is read back into one buffer of
// exactly its size. ed25519 needs the file contiguous, and joining chunks
// held in memory would hold two copies (about twice the limit for a body
// of exactly the limit); spooled, a body costs at most limit + 1 MiB of
// memory, and a refused one (endless, too long) at most 1 MiB. The spool
// file costs at most limit+1 bytes of disk, and is removed at once.
func Read(r io.Reader, size, limit int64, spoolDir string) ([]byte, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("catalog: read limit %d: want more than 0", limit)
	}
	if size > limit {
		return nil, fmt.Errorf("%w: %d bytes announced, the limit is %d", ErrTooLarge, size, limit)
	}
	if size >= 0 {
		return readSized(r, size)
	}
	return readUnsized(r, limit, spoolDir)
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

// readUnsized reads up to memHead bytes into memory, and spools the rest.
func readUnsized(r io.Reader, limit int64, spoolDir string) ([]byte, error) {
	// One byte past the limit tells a body of exactly limit bytes from a
	// longer one.
	head := make([]byte, min(memHead, limit+1))
	n, err := io.ReadFull(r, head)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		// Ended in memory: keep only what it holds.
		return bytes.Clone(head[:n]), nil
	case err != nil:
		return nil, fmt.Errorf("catalog: read: %w", err)
	case int64(n) > limit:
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return spool(r, head, limit, spoolDir)
}

// spool copies head and then the rest of r, up to limit+1 bytes in all,
// to a temp file in dir, and reads a body that ended within the limit
// back into one buffer of its size.
func spool(r io.Reader, head []byte, limit int64, dir string) ([]byte, error) {
	f, err := createSpool(dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = f.Close()
		_ = os.Remove(f.Name()) // where an open file cannot be removed
	}()
	if _, err := f.Write(head); err != nil {
		return nil, fmt.Errorf("catalog: spool: %w", err)
	}
	total := int64(len(head))
	head = nil // collectable while the rest is copied
	n, err := io.Copy(f, io.LimitReader(r, limit+1-total))
	total += n
	if err != nil {
		return nil, fmt.Errorf("catalog: read into the spool file: %w", err)
	}
	if total > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	b := make([]byte, total)
	if m, err := f.ReadAt(b, 0); int64(m) != total {
		release(total)
		return nil, fmt.Errorf("catalog: read back %d of %d spooled bytes: %w", m, total, err)
	}
	return b, nil
}

// createSpool creates the spool file in dir, or in os.TempDir if dir is
// empty or refuses it, and removes its name at once: nothing is left
// behind, whatever happens next, on systems that allow it.
func createSpool(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, "catalog-*.spool")
	if err != nil && dir != "" {
		f, err = os.CreateTemp("", "relayd-catalog-*.spool")
	}
	if err != nil {
		return nil, fmt.Errorf("catalog: spool: %w", err)
	}
	_ = os.Remove(f.Name())
	return f, nil
}

// releaseFrom is the size of a dropped body from which release hands the
// memory back at once.
const releaseFrom = 1 << 20

// release hands the memory of a dropped catalog body of n bytes back
// (a garbage collection, and the freed pages to the system) when it is
// large. It is needed where a whole buffer was allocated: a known length
// that turned out wrong, a spooled body that could not be read back. Left to the
// collector's pacing those buffers would pile up: a collection that ran
// while one was live sets the next goal at several times it (five times
// on a relay, which runs at GOGC=400), so a parent that sends a forged
// catalog of the limit on every retry would raise the heap by as many
// bodies before the next collection. A refused body of unknown length
// needs nothing: it never left the 1 MiB memory head. A refused catalog
// is rare and costs a full read of up to the limit; one forced collection
// is small beside it.
func release(n int64) {
	if n >= releaseFrom {
		debug.FreeOSMemory()
	}
}
