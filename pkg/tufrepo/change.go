// A change to the repository (a generation, a new root): install it when
// every file has its signatures, stage it outside the tree when not.
package tufrepo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/internal/atomicfile"
)

// Kinds of change.
const (
	kindGeneration = "generation"
	kindRoot       = "root"
)

// ManifestFile names what a staging directory holds.
const ManifestFile = "staged.json"

// change is the files of one change, versioned files first, timestamp
// last.
type change struct {
	kind                                  string
	baseRoot, baseSnapshot, baseTimestamp int64
	files                                 []outFile
}

// outFile is one file of a change and who must sign it (a new root: the
// previous root's root keys and its own).
type outFile struct {
	name, role string
	data       []byte
	signers    []signerSet
	sigs       []metadata.Signature // of data; nil: read them from data
}

type signerSet struct {
	KeyIDs    []string `json:"keyids"`
	Threshold int      `json:"threshold"`
}

// manifest is ManifestFile.
type manifest struct {
	Tree          string        `json:"tree"`
	Kind          string        `json:"kind"`
	BaseRoot      int64         `json:"base_root"`
	BaseSnapshot  int64         `json:"base_snapshot"`
	BaseTimestamp int64         `json:"base_timestamp"`
	Files         []stagedEntry `json:"files"`
}

type stagedEntry struct {
	Name    string      `json:"name"`
	Role    string      `json:"role"`
	Signers []signerSet `json:"signers"`
}

// Need says which signatures a staged file lacks.
type Need struct {
	File      string   // served name, e.g. "4.security.json"
	Role      string   // role that signs it
	Have      int      // signatures of keys the role lists
	Threshold int      // signatures it needs
	Missing   []string // key IDs that may still sign
}

// Result says what a command wrote.
type Result struct {
	Written  []string // files installed under TREE/-/tuf, in order
	StagedIn string   // the staging directory, when signatures lack
	Needs    []Need   // what the staged files lack
	Pruned   int      // old versioned files removed
}

// hasSnapshot says whether c writes a snapshot (a new generation).
func (c *change) hasSnapshot() bool {
	for _, f := range c.files {
		if f.role == metadata.SNAPSHOT {
			return true
		}
	}
	return false
}

func (c *change) add(name, role string, data []byte, sigs []metadata.Signature, e entry) {
	c.files = append(c.files, outFile{name: name, role: role, data: data, sigs: sigs,
		signers: []signerSet{{KeyIDs: e.keyIDs, Threshold: e.threshold}}})
}

// addSigned signs m with the ring's keys of e and adds it.
func addSigned[T metadata.Roles](c *change, ring *KeyRing, m *metadata.Metadata[T], name, role string, e entry) error {
	data, _, err := signWith(ring, m, e.keyIDs)
	if err != nil {
		return fmt.Errorf("tufrepo: %s: %w", name, err)
	}
	c.add(name, role, data, m.Signatures, e)
	return nil
}

func (c *change) addSigned(ring *KeyRing, m any, name, role string, e entry) error {
	switch m := m.(type) {
	case *snapshotMeta:
		return addSigned(c, ring, m, name, role, e)
	case *timestampMeta:
		return addSigned(c, ring, m, name, role, e)
	case *rootMeta:
		return addSigned(c, ring, m, name, role, e)
	case *targetsMeta:
		return addSigned(c, ring, m, name, role, e)
	}
	return fmt.Errorf("tufrepo: %s: unknown metadata type", name)
}

// needs lists the files whose signatures are short of a threshold.
func needsOf(files []outFile) ([]Need, error) {
	var out []Need
	for _, f := range files {
		sigs := f.sigs
		if sigs == nil {
			var err error
			if sigs, err = signaturesOf(f.data); err != nil {
				return nil, fmt.Errorf("tufrepo: %s: %w", f.name, err)
			}
		}
		for _, set := range f.signers {
			have := countSigned(sigs, set.KeyIDs)
			if have >= set.Threshold {
				continue
			}
			var missing []string
			for _, id := range set.KeyIDs {
				if !signedBy(sigs, id) {
					missing = append(missing, id)
				}
			}
			out = append(out, Need{File: f.name, Role: f.role, Have: have, Threshold: set.Threshold, Missing: missing})
		}
	}
	return out, nil
}

// signaturesOf reads the signatures of a metadata file.
func signaturesOf(data []byte) ([]metadata.Signature, error) {
	var env struct {
		Signatures []metadata.Signature `json:"signatures"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, err
	}
	return env.Signatures, nil
}

// apply installs c in s's tree when every file has its signatures, or
// stages it in staging.
func apply(s *state, c *change, staging string) (*Result, error) {
	needs, err := needsOf(c.files)
	if err != nil {
		return nil, err
	}
	if len(needs) > 0 {
		if err := stage(s, c, staging); err != nil {
			return nil, err
		}
		return &Result{StagedIn: staging, Needs: needs}, nil
	}
	return install(s, c.files)
}

// install writes files into s's metadata directory: every versioned file
// (in parallel, one directory fsync), then timestamp.json, so a reader
// never sees a timestamp naming a missing file. Then old generations are
// pruned.
func install(s *state, files []outFile) (*Result, error) {
	res := &Result{}
	var last *outFile
	batch := make(map[string][]byte, len(files))
	for i := range files {
		f := &files[i]
		if f.name == TimestampFile {
			last = f
			continue
		}
		res.Written = append(res.Written, f.name)
		batch[f.name] = f.data
	}
	if err := atomicfile.WriteFiles(s.dir, batch, 0o644); err != nil {
		return nil, fmt.Errorf("tufrepo: write %s: %w", s.dir, err)
	}
	if last != nil {
		if err := atomicfile.WriteFile(filepath.Join(s.dir, last.name), last.data, 0o644); err != nil {
			return nil, fmt.Errorf("tufrepo: write %s: %w", last.name, err)
		}
		res.Written = append(res.Written, last.name)
		n, err := prune(s.dir, keepGenerations)
		if err != nil {
			return nil, err
		}
		res.Pruned = n
	}
	return res, nil
}

// writeNew writes a versioned file atomically; an existing file with
// other bytes is replaced only if no timestamp ever named it (a publish
// that crashed before its timestamp), which the caller's versions ensure.
func writeNew(path string, data []byte) error {
	if err := atomicfile.WriteFileNoDirSync(path, data, 0o644); err != nil {
		return fmt.Errorf("tufrepo: write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// stagingDir is where a tree's staged change goes by default: beside
// the tree, never inside what is served.
func stagingDir(absTree, staging string) string {
	if staging != "" {
		return staging
	}
	return filepath.Join(filepath.Dir(absTree), filepath.Base(absTree)+".tuf-staged")
}

// stage writes c into dir with its manifest. A directory that already
// holds a staged change is refused: commit it or remove it first.
func stage(s *state, c *change, dir string) error {
	if rel, err := filepath.Rel(s.tree, dir); err == nil && !filepath.IsAbs(rel) && rel != ".." && !startsWithDotDot(rel) {
		return fmt.Errorf("tufrepo: staging directory %s is inside the tree %s (it would be served)", dir, s.tree)
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestFile)); err == nil {
		return fmt.Errorf("tufrepo: %s already holds a staged change: commit it (relayd tuf commit) or remove the directory", dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("tufrepo: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("tufrepo: %w", err)
	}
	m := manifest{Tree: s.tree, Kind: c.kind, BaseRoot: c.baseRoot, BaseSnapshot: c.baseSnapshot, BaseTimestamp: c.baseTimestamp}
	for _, f := range c.files {
		if err := writeNew(filepath.Join(dir, f.name), f.data); err != nil {
			return err
		}
		m.Files = append(m.Files, stagedEntry{Name: f.name, Role: f.role, Signers: f.signers})
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	// The manifest last: a directory without one holds no staged change.
	if err := atomicfile.WriteFile(filepath.Join(dir, ManifestFile), b, 0o644); err != nil {
		return fmt.Errorf("tufrepo: write %s: %w", ManifestFile, err)
	}
	return nil
}

func startsWithDotDot(rel string) bool {
	return len(rel) >= 3 && rel[:2] == ".." && os.IsPathSeparator(rel[2])
}

// keepGenerations is how many snapshots (with every file they name)
// prune keeps.
const keepGenerations = 3

// prune removes versioned files no kept snapshot names: the newest
// keepGenerations snapshots, those the gates (rollout.json) open a ring
// at, and the files they name stay; every root stays for ever.
func prune(dir string, keep int) (int, error) {
	ts, err := readMeta(metadata.Timestamp(), dir, TimestampFile)
	if err != nil {
		return 0, err
	}
	newest := ts.Signed.Meta["snapshot.json"].Version
	kept := map[string]bool{}
	versions := gatedGenerations(dir)
	for v := newest; v > max(0, newest-int64(keep)); v-- {
		versions = append(versions, v)
	}
	for _, v := range versions {
		name := fileName(v, metadata.SNAPSHOT)
		kept[name] = true
		snap, err := readMeta(metadata.Snapshot(), dir, name)
		if err != nil {
			continue // pruned before, or never written
		}
		for role, mf := range snap.Signed.Meta {
			kept[fileName(mf.Version, role[:len(role)-len(".json")])] = true
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("tufrepo: %w", err)
	}
	n := 0
	for _, e := range ents {
		m := versionedName.FindStringSubmatch(e.Name())
		if m == nil || m[2] == metadata.ROOT || kept[e.Name()] {
			continue
		}
		if v, _ := parseVersion(m[1]); m[2] == metadata.SNAPSHOT && v > newest {
			continue // a staged-and-crashed future: harmless, left alone
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err == nil {
			n++
		}
	}
	return n, nil
}

func parseVersion(s string) (int64, error) {
	var v int64
	_, err := fmt.Sscan(s, &v)
	return v, err
}
