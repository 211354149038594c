// What an agent remembers between runs besides its trusted TUF metadata
// (StateDir/tuf, pkg/tufclient's): the newest catalog generation it has
// verified and the digests of the files it has written (so Sync does not
// hash an unchanged tree again).
package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/relayd/relayd/internal/atomicfile"
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
	// Generation is the newest catalog generation (snapshot version)
	// verified.
	Generation uint64 `json:"generation"`
	// Synced is the generation the last complete Sync brought Dir to.
	Synced uint64 `json:"synced"`
	// Installed is the generation the install step last succeeded for
	// (Exec, or a sync without one), so it runs again only for a new
	// generation, changed files or after a failure.
	Installed uint64                `json:"installed,omitempty"`
	Files     map[string]fileRecord `json:"files"`
}

// state is the stateDoc in memory. Changes mark it dirty; save writes it
// once per Fetch or Sync, and only if something changed.
type state struct {
	path  string // "" with Discard: memory only
	mu    sync.Mutex
	doc   stateDoc
	dirty bool // doc differs from the file
	saves int  // files written, for tests
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
		return nil, fmt.Errorf("agent: state %s is damaged (%v): remove it to start over (the files are hashed again)", s.path, err)
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
	defer s.mu.Unlock()
	if old, ok := s.doc.Files[p]; ok && old == r {
		return
	}
	s.doc.Files[p] = r
	s.dirty = true
}

// seen records the generation of a verified catalog, if it is newer than
// the one recorded.
func (s *state) seen(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen <= s.doc.Generation {
		return
	}
	s.doc.Generation = gen
	s.dirty = true
}

// syncedTo records a complete sync to generation gen whose objects are
// keep: the records of other files are dropped.
func (s *state) syncedTo(gen uint64, keep map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen > s.doc.Synced {
		s.doc.Synced = gen
		s.dirty = true
	}
	for p := range s.doc.Files {
		if !keep[p] {
			delete(s.doc.Files, p)
			s.dirty = true
		}
	}
}

// installed returns the generation last installed.
func (s *state) installed() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.doc.Installed
}

// setInstalled records a successful install of generation gen.
func (s *state) setInstalled(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.doc.Installed != gen {
		s.doc.Installed = gen
		s.dirty = true
	}
}

// save writes the state if it changed since it was loaded or last saved.
func (s *state) save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dirty || s.path == "" {
		return nil
	}
	b, err := json.Marshal(&s.doc)
	if err != nil {
		return fmt.Errorf("agent: state: %w", err)
	}
	// The agent's own bookkeeping: its user only.
	if err := atomicfile.WriteFile(s.path, b, 0o600); err != nil {
		return fmt.Errorf("agent: save state: %w", err)
	}
	s.dirty = false
	s.saves++
	return nil
}

// savesSoFar is how many times the file was written.
func (s *state) savesSoFar() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saves
}
