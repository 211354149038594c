// What an agent remembers between runs: the newest catalog generation it
// has seen (so a relay cannot roll it back) and the digests of the files
// it has written (so Sync does not hash an unchanged tree again).
package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/relayd/relayd/pkg/digest"
)

// StateDir is the directory, inside the output directory, where the agent
// keeps its state. No catalog path may start with it.
const StateDir = ".relayd-agent"

const stateFile = "state.json"

// fileRecord is what the agent knows about one file it wrote: the digest,
// valid while size and modification time are as recorded.
type fileRecord struct {
	Size   int64         `json:"size"`
	MTime  int64         `json:"mtime_ns"`
	SHA256 digest.Digest `json:"sha256"`
}

type stateDoc struct {
	// Generation is the newest catalog generation verified.
	Generation uint64 `json:"generation"`
	// Catalog is that catalog file's digest.
	Catalog string `json:"catalog,omitempty"`
	// Synced is the generation the last complete Sync brought Dir to.
	Synced uint64                `json:"synced"`
	Files  map[string]fileRecord `json:"files"`
}

type state struct {
	path string // "" with Discard: memory only
	mu   sync.Mutex
	doc  stateDoc
}

func loadState(dir string, discard bool) (*state, error) {
	s := &state{doc: stateDoc{Files: map[string]fileRecord{}}}
	if discard {
		return s, nil
	}
	s.path = filepath.Join(dir, StateDir, stateFile)
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("agent: state: %w", err)
	}
	if err := json.Unmarshal(b, &s.doc); err != nil {
		return nil, fmt.Errorf("agent: state %s is damaged (%v): remove it to start over, which also forgets the newest generation seen", s.path, err)
	}
	if s.doc.Files == nil {
		s.doc.Files = map[string]fileRecord{}
	}
	return s, nil
}

func (s *state) generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.doc.Generation
}

func (s *state) synced() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.doc.Synced
}

func (s *state) file(p string) (fileRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.doc.Files[p]
	return r, ok
}

func (s *state) setFile(p string, r fileRecord) {
	s.mu.Lock()
	s.doc.Files[p] = r
	s.mu.Unlock()
}

// update changes the state with f and saves it.
func (s *state) update(f func(*stateDoc)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.doc)
	if s.path == "" {
		return nil
	}
	b, err := json.Marshal(&s.doc)
	if err != nil {
		return fmt.Errorf("agent: state: %w", err)
	}
	if err := writeFileAtomic(s.path, b); err != nil {
		return fmt.Errorf("agent: save state: %w", err)
	}
	return nil
}

// writeFileAtomic writes b to path through a temporary file in the same
// directory: fsync, rename, fsync the directory.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
