package tufrepo

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Commit installs the change staged for tree (in opt.Staging or the
// default staging directory) once every file verifies with go-tuf: a new
// root with the previous root's threshold and its own, every other file
// with its delegator (staged or installed). ring (may be empty) adds its
// signatures first. The tree must not have moved since the change was
// staged. The staging directory is removed after.
func Commit(tree string, ring *KeyRing, opt Options) (*Result, error) {
	abs, dir, err := metaDir(tree)
	if err != nil {
		return nil, err
	}
	staging := stagingDir(abs, opt.Staging)
	m, err := readManifest(staging)
	if err != nil {
		return nil, fmt.Errorf("tufrepo: nothing staged for %s: %w", tree, err)
	}
	if ring != nil && ring.Len() > 0 {
		if _, err := SignStaged(staging, ring); err != nil {
			return nil, err
		}
	}
	unlock, err := lock(tree)
	if err != nil {
		return nil, err
	}
	defer unlock()
	s := &state{tree: abs, dir: dir, roles: map[string]*targetsMeta{}}
	if m.Kind != kindRoot || m.BaseRoot > 0 {
		if s, err = load(tree); err != nil {
			return nil, err
		}
	}
	if err := checkBase(s, m); err != nil {
		return nil, err
	}
	files := make([]outFile, 0, len(m.Files))
	for _, f := range m.Files {
		b, err := readBounded(filepath.Join(staging, f.Name))
		if err != nil {
			return nil, err
		}
		files = append(files, outFile{name: f.Name, role: f.Role, data: b, signers: f.Signers})
	}
	if needs, err := needsOf(files); err != nil {
		return nil, err
	} else if len(needs) > 0 {
		return &Result{StagedIn: staging, Needs: needs}, fmt.Errorf("tufrepo: the staged change lacks signatures (%s has %d of %d)", needs[0].File, needs[0].Have, needs[0].Threshold)
	}
	if err := verifyStaged(s, files); err != nil {
		return nil, err
	}
	res, err := install(s, files)
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(staging); err != nil {
		return res, fmt.Errorf("tufrepo: installed, but could not remove %s: %w", staging, err)
	}
	return res, nil
}

func checkBase(s *state, m *manifest) error {
	var rootV, tsV int64
	if s.root != nil {
		rootV = s.root.Signed.Version
	}
	if s.timestamp != nil {
		tsV = s.timestamp.Signed.Version
	}
	moved := rootV != m.BaseRoot
	if m.Kind == kindGeneration {
		moved = moved || s.generation() != m.BaseSnapshot || tsV != m.BaseTimestamp
	}
	if moved {
		return fmt.Errorf("tufrepo: the tree moved since the change was staged (root %d, generation %d, timestamp %d; staged on root %d, generation %d, timestamp %d): remove the staging directory and redo the change",
			rootV, s.generation(), tsV, m.BaseRoot, m.BaseSnapshot, m.BaseTimestamp)
	}
	return nil
}

// verifyStaged verifies every staged file with go-tuf.
func verifyStaged(s *state, files []outFile) error {
	staged := map[string]*targetsMeta{}
	for _, f := range files {
		if r, ok := roleOf(f.name); ok && f.role != metadata.ROOT && f.role != metadata.SNAPSHOT && f.name != TimestampFile {
			t, err := metadata.Targets().FromBytes(f.data)
			if err != nil {
				return fmt.Errorf("tufrepo: %s: %w", f.name, err)
			}
			staged[r] = t
		}
	}
	for _, f := range files {
		if err := verifyOne(s, staged, f); err != nil {
			return fmt.Errorf("tufrepo: staged %s: %w", f.name, err)
		}
	}
	return nil
}

func verifyOne(s *state, staged map[string]*targetsMeta, f outFile) error {
	switch {
	case f.role == metadata.ROOT:
		r, err := metadata.Root().FromBytes(f.data)
		if err != nil {
			return err
		}
		if want := rootVersion(s) + 1; r.Signed.Version != want {
			return fmt.Errorf("root version %d, want %d", r.Signed.Version, want)
		}
		return verifyRoot(s.root, r)
	case f.name == TimestampFile:
		t, err := metadata.Timestamp().FromBytes(f.data)
		if err != nil {
			return err
		}
		return s.root.VerifyDelegate(metadata.TIMESTAMP, t)
	case f.role == metadata.SNAPSHOT:
		t, err := metadata.Snapshot().FromBytes(f.data)
		if err != nil {
			return err
		}
		return s.root.VerifyDelegate(metadata.SNAPSHOT, t)
	}
	name, _ := roleOf(f.name)
	if name == metadata.TARGETS {
		return s.root.VerifyDelegate(metadata.TARGETS, staged[name])
	}
	d := delegatorOf(name, staged)
	if d == nil {
		d = delegatorOf(name, s.roles)
	}
	if d == nil {
		return fmt.Errorf("no role delegates to %s", name)
	}
	return d.VerifyDelegate(name, staged[name])
}

func rootVersion(s *state) int64 {
	if s.root == nil {
		return 0
	}
	return s.root.Signed.Version
}

// roleOf is the role of a versioned file name.
func roleOf(name string) (string, bool) {
	m := versionedName.FindStringSubmatch(name)
	if m == nil {
		return "", false
	}
	return m[2], true
}

// delegatorOf finds the targets role among ms that delegates to name.
func delegatorOf(name string, ms map[string]*targetsMeta) *targetsMeta {
	for _, m := range ms {
		d := m.Signed.Delegations
		if d == nil {
			continue
		}
		for _, r := range d.Roles {
			if r.Name == name {
				return m
			}
		}
		if d.SuccinctRoles != nil && strings.HasPrefix(name, d.SuccinctRoles.NamePrefix+"-") && d.SuccinctRoles.IsDelegatedRole(name) {
			return m
		}
	}
	return nil
}
