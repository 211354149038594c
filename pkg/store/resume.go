package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/relayd/relayd/pkg/digest"
)

// resumePrefix marks temp files that survive a restart (Resume); every
// other temp file belongs to a fill that cannot be resumed.
const resumePrefix = "resume-"

// pinSuffix names the file kept beside a partial download that says which
// representation its bytes are (SetPin).
const pinSuffix = ".pin"

// Resume opens the partial file of a download named name (a digest's hex,
// say), creating it if needed, so that a download killed at any point
// continues where it stopped: Written tells how many bytes are there, and
// Write appends. The bytes already there are hashed again, so Commit still
// verifies the whole object. A partial file longer than size starts over.
// Close without Commit keeps the partial file; Abort removes it.
//
// A name has one writer at a time: until that writer's Close, Resume of
// the same name fails with ErrBusy (two writers of one file corrupt it).
func (s *Store) Resume(name string, size int64) (*Writer, error) {
	if name == "" || strings.ContainsAny(name, `/\.`) {
		return nil, fmt.Errorf("store: resume name %q", name)
	}
	if size < 0 {
		return nil, errors.New("store: resume needs the size")
	}
	s.mu.Lock()
	closed, busy := s.closed, s.resuming[name]
	if !closed && !busy {
		s.resuming[name] = true
	}
	s.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if busy {
		return nil, fmt.Errorf("%w: %s", ErrBusy, name)
	}
	if err := s.reserve(size); err != nil {
		s.endResume(name)
		return nil, err
	}
	path := filepath.Join(s.tmpDir, resumePrefix+name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		s.unreserve(size)
		s.endResume(name)
		return nil, fmt.Errorf("store: resume %s: %w", name, mapNoSpace(err))
	}
	w := &Writer{s: s, f: f, path: path, h: digest.NewHash(), size: size, reserved: size, resume: name}
	st, err := f.Stat()
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: resume %s: %w", name, err)
	}
	if st.Size() > size {
		if err := w.Reset(); err != nil {
			w.Close()
			return nil, err
		}
		return w, nil
	}
	n, err := io.Copy(w.h, io.NewSectionReader(f, 0, st.Size()))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: resume %s: rehash: %w", name, err)
	}
	w.n = n
	return w, nil
}

// endResume frees name for the next Resume.
func (s *Store) endResume(name string) {
	s.mu.Lock()
	delete(s.resuming, name)
	s.mu.Unlock()
}

// Reset empties a writer, to start the object over; a resume writer's
// pin goes with its bytes.
func (w *Writer) Reset() error {
	if err := w.f.Truncate(0); err != nil {
		return fmt.Errorf("store: reset: %w", err)
	}
	w.h = digest.NewHash()
	w.n = 0
	if err := w.dropPin(); err != nil {
		return fmt.Errorf("store: reset: %w", err)
	}
	return nil
}

// filePin is the document of a pin file.
type filePin struct {
	ETag string `json:"etag"`
	Size int64  `json:"size"`
}

// Pin returns the representation a resume writer's partial file holds
// bytes of, as SetPin saved it: the strong ETag and complete length of the
// answer they came from. ok is false when none was saved (a new file, or
// one written before pins were kept); such a file cannot be resumed.
func (w *Writer) Pin() (etag string, size int64, ok bool) {
	if w.resume == "" {
		return "", 0, false
	}
	b, err := os.ReadFile(w.path + pinSuffix)
	if err != nil || len(b) > 4<<10 {
		return "", 0, false
	}
	var p filePin
	if json.Unmarshal(b, &p) != nil || p.ETag == "" || p.Size < 0 {
		return "", 0, false
	}
	return p.ETag, p.Size, true
}

// SetPin saves, beside a resume writer's partial file, the representation
// its bytes come from, so that a resume after a restart is checked
// against it. Call it before the first byte of that representation is
// written (the file is empty or was Reset): bytes never outlive their pin
// file. It is written whole (temp file and rename) but not fsynced: after
// a power loss the partial file itself may be torn, and Commit's digest
// check is what catches either.
func (w *Writer) SetPin(etag string, size int64) error {
	if w.resume == "" {
		return errors.New("store: a pin is only kept for a resumable download")
	}
	b, err := json.Marshal(filePin{ETag: etag, Size: size})
	if err != nil {
		return err
	}
	// Not under resumePrefix: a leftover is removed at the next start.
	tmp := filepath.Join(filepath.Dir(w.path), "pin-"+w.resume+".tmp")
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("store: pin %s: %w", w.resume, mapNoSpace(err))
	}
	if err := os.Rename(tmp, w.path+pinSuffix); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("store: pin %s: %w", w.resume, err)
	}
	return nil
}

// dropPin removes a resume writer's pin file, if any.
func (w *Writer) dropPin() error {
	if w.resume == "" {
		return nil
	}
	if err := os.Remove(w.path + pinSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
