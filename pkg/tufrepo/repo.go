// The repository as it is on disk: file names, and loading the newest
// state of TREE/-/tuf with every file verified by go-tuf.
package tufrepo

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"golang.org/x/sync/errgroup"
)

// Dir is the repository's directory in a published tree (served at
// /-/tuf/).
const Dir = "-/tuf"

// TimestampFile is the one unversioned file.
const TimestampFile = "timestamp.json"

// MaxDepth is the deepest path relayd publishes (segments): TUF path
// patterns match one segment per '*', so "security/**" is stored as one
// pattern per depth up to this.
const MaxDepth = 16

// Rest is the last leaf role: every path no team role took, signed by the
// targets keys.
const Rest = "rest"

// binSuffix makes a leaf role's hashed-bin name prefix ("rest-bin").
const binSuffix = "-bin"

// versionedName matches the versioned files of the repository.
var versionedName = regexp.MustCompile(`^([1-9][0-9]{0,18})\.([a-z0-9][a-z0-9-]{0,63})\.json$`)

// roleName is a valid name of a team role.
var roleName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

func fileName(version int64, role string) string {
	return strconv.FormatInt(version, 10) + "." + role + ".json"
}

// Expiries are the lifetimes of newly signed metadata.
type Expiries struct {
	Root      time.Duration // default 365 days
	Targets   time.Duration // targets, team roles, rest and bins; default 90 days
	Snapshot  time.Duration // default 30 days
	Timestamp time.Duration // default 1 day
}

// DefaultExpiries are the contract's defaults.
func DefaultExpiries() Expiries {
	const day = 24 * time.Hour
	return Expiries{Root: 365 * day, Targets: 90 * day, Snapshot: 30 * day, Timestamp: day}
}

func (e Expiries) complete() Expiries {
	d := DefaultExpiries()
	if e.Root <= 0 {
		e.Root = d.Root
	}
	if e.Targets <= 0 {
		e.Targets = d.Targets
	}
	if e.Snapshot <= 0 {
		e.Snapshot = d.Snapshot
	}
	if e.Timestamp <= 0 {
		e.Timestamp = d.Timestamp
	}
	return e
}

type (
	rootMeta      = metadata.Metadata[metadata.RootType]
	targetsMeta   = metadata.Metadata[metadata.TargetsType]
	snapshotMeta  = metadata.Metadata[metadata.SnapshotType]
	timestampMeta = metadata.Metadata[metadata.TimestampType]
)

// entry is who signs a role: the delegator's key IDs and threshold.
type entry struct {
	delegator string
	keyIDs    []string
	threshold int
}

// state is the newest installed repository.
type state struct {
	tree, dir string
	root      *rootMeta // newest
	prevRoot  *rootMeta // the one before, nil for version 1
	timestamp *timestampMeta
	snapshot  *snapshotMeta
	roles     map[string]*targetsMeta // reachable targets roles by name
	entries   map[string]entry        // who signs each of roles, per its delegator
	stale     map[string]bool         // signed under the previous root's keys: re-sign
}

// generation is the snapshot version, 0 before the first publish.
func (s *state) generation() int64 {
	if s.snapshot == nil {
		return 0
	}
	return s.snapshot.Signed.Version
}

// metaDir is TREE/-/tuf.
func metaDir(tree string) (abs, dir string, err error) {
	abs, err = filepath.Abs(tree)
	if err != nil {
		return "", "", fmt.Errorf("tufrepo: %w", err)
	}
	return abs, filepath.Join(abs, filepath.FromSlash(Dir)), nil
}

// openLocked takes the tree's writer lock and loads the repository: the
// start of every change. The caller defers unlock.
func openLocked(tree string) (s *state, unlock func(), err error) {
	if unlock, err = lock(tree); err != nil {
		return nil, nil, err
	}
	if s, err = load(tree); err != nil {
		unlock()
		return nil, nil, err
	}
	return s, unlock, nil
}

// load reads and verifies the repository of tree. A tree without
// 1.root.json is an error (relayd tuf init first).
func load(tree string) (*state, error) {
	abs, dir, err := metaDir(tree)
	if err != nil {
		return nil, err
	}
	s := &state{tree: abs, dir: dir, roles: map[string]*targetsMeta{}, entries: map[string]entry{}, stale: map[string]bool{}}
	if err := s.loadRoots(); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, TimestampFile))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tufrepo: %w", err)
	}
	if s.timestamp, err = metadata.Timestamp().FromBytes(b); err != nil {
		return nil, fmt.Errorf("tufrepo: %s: %w", TimestampFile, err)
	}
	if err := s.verifyTop(metadata.TIMESTAMP, s.timestamp); err != nil {
		return nil, err
	}
	sv := s.timestamp.Signed.Meta["snapshot.json"]
	if sv == nil {
		return nil, fmt.Errorf("tufrepo: %s names no snapshot", TimestampFile)
	}
	name := fileName(sv.Version, metadata.SNAPSHOT)
	if s.snapshot, err = readMeta(metadata.Snapshot(), dir, name); err != nil {
		return nil, err
	}
	if err := s.verifyTop(metadata.SNAPSHOT, s.snapshot); err != nil {
		return nil, err
	}
	return s, s.loadTargets()
}

// readMeta reads dir/name into m.
func readMeta[T metadata.Roles](m *metadata.Metadata[T], dir, name string) (*metadata.Metadata[T], error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("tufrepo: %w", err)
	}
	if _, err := m.FromBytes(b); err != nil {
		return nil, fmt.Errorf("tufrepo: %s: %w", name, err)
	}
	return m, nil
}

// loadRoots reads 1.root.json, 2.root.json, … and verifies the chain:
// each version signed by its predecessor's root threshold and its own.
func (s *state) loadRoots() error {
	for v := int64(1); ; v++ {
		name := fileName(v, metadata.ROOT)
		if _, err := os.Stat(filepath.Join(s.dir, name)); errors.Is(err, fs.ErrNotExist) {
			if v == 1 {
				return fmt.Errorf("tufrepo: %s has no %s: run relayd tuf init first", s.tree, name)
			}
			return nil
		}
		r, err := readMeta(metadata.Root(), s.dir, name)
		if err != nil {
			return err
		}
		if r.Signed.Version != v {
			return fmt.Errorf("tufrepo: %s holds version %d", name, r.Signed.Version)
		}
		if err := verifyRoot(s.root, r); err != nil {
			return fmt.Errorf("tufrepo: %s: %w", name, err)
		}
		s.prevRoot, s.root = s.root, r
	}
}

// verifyRoot checks that next is signed by the root threshold of prev
// (if any) and of next itself.
func verifyRoot(prev, next *rootMeta) error {
	if prev != nil {
		if err := prev.VerifyDelegate(metadata.ROOT, next); err != nil {
			return fmt.Errorf("not signed by the previous root's threshold: %w", err)
		}
	}
	if err := next.VerifyDelegate(metadata.ROOT, next); err != nil {
		return fmt.Errorf("not signed by its own root threshold: %w", err)
	}
	return nil
}

// verifyTop verifies a top-level role with the newest root; one signed
// under the previous root's keys (a rotation just happened) is accepted
// as stale: the next write re-signs it.
func (s *state) verifyTop(role string, m any) error {
	err := s.root.VerifyDelegate(role, m)
	if err == nil {
		return nil
	}
	if s.prevRoot != nil && s.prevRoot.VerifyDelegate(role, m) == nil {
		s.stale[role] = true
		return nil
	}
	return fmt.Errorf("tufrepo: the installed %s does not verify with root version %d: %w", role, s.root.Signed.Version, err)
}

// loadTargets reads every targets role reachable from top-level targets
// at the versions the snapshot names, verifying each with its delegator.
func (s *state) loadTargets() error {
	t, err := s.readRole(metadata.TARGETS)
	if err != nil {
		return err
	}
	if err := s.verifyTop(metadata.TARGETS, t); err != nil {
		return err
	}
	s.roles[metadata.TARGETS] = t
	s.entries[metadata.TARGETS] = rootEntry(s.root, metadata.TARGETS)
	if t.Signed.Delegations == nil {
		return nil
	}
	for _, d := range t.Signed.Delegations.Roles {
		if err := s.loadDelegated(t, metadata.TARGETS, d.Name, d.KeyIDs, d.Threshold); err != nil {
			return err
		}
		leaf := s.roles[d.Name]
		if leaf.Signed.Delegations == nil || leaf.Signed.Delegations.SuccinctRoles == nil {
			continue
		}
		sr := leaf.Signed.Delegations.SuccinctRoles
		if err := s.loadBins(leaf, d.Name, sr); err != nil {
			return err
		}
	}
	return nil
}

// loadBins reads the hashed bins of leaf in parallel. Unlike the other
// roles they are not verified here: all a publisher takes from a bin is
// whether it already lists exactly the targets computed from the tree,
// under the keys the (verified) leaf names; a bin whose content differs
// is rebuilt and re-signed, so a tampered bin never gets a signature.
// Reading 2 MB of bins for 10,000 objects through go-tuf's generic
// decoder and canonical re-encoding cost more than hashing them.
func (s *state) loadBins(leaf *targetsMeta, name string, sr *metadata.SuccinctRoles) error {
	bins := sr.GetRoles()
	got := make([]*targetsMeta, len(bins))
	var g errgroup.Group
	g.SetLimit(8)
	for i, b := range bins {
		g.Go(func() error {
			m, err := s.readBin(b)
			got[i] = m
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i, b := range bins {
		s.roles[b] = got[i]
		s.entries[b] = entry{delegator: name, keyIDs: sr.KeyIDs, threshold: sr.Threshold}
	}
	return nil
}

func (s *state) loadDelegated(delegator *targetsMeta, delegatorName, name string, keyIDs []string, threshold int) error {
	m, err := s.readRole(name)
	if err != nil {
		return err
	}
	if err := delegator.VerifyDelegate(name, m); err != nil {
		return fmt.Errorf("tufrepo: %s does not verify with %s: %w", name, delegatorName, err)
	}
	s.roles[name] = m
	s.entries[name] = entry{delegator: delegatorName, keyIDs: keyIDs, threshold: threshold}
	return nil
}

// readRole reads the version of a targets role the snapshot names.
func (s *state) readRole(name string) (*targetsMeta, error) {
	mf := s.snapshot.Signed.Meta[name+".json"]
	if mf == nil {
		return nil, fmt.Errorf("tufrepo: snapshot version %d does not name %s", s.snapshot.Signed.Version, name)
	}
	m, err := readMeta(metadata.Targets(), s.dir, fileName(mf.Version, name))
	if err != nil {
		return nil, err
	}
	if m.Signed.Version != mf.Version {
		return nil, fmt.Errorf("tufrepo: %s holds version %d", fileName(mf.Version, name), m.Signed.Version)
	}
	return m, nil
}

func rootEntry(r *rootMeta, role string) entry {
	rr := r.Signed.Roles[role]
	if rr == nil {
		return entry{delegator: metadata.ROOT}
	}
	return entry{delegator: metadata.ROOT, keyIDs: rr.KeyIDs, threshold: rr.Threshold}
}

// binFile is the part of a bin a publisher compares.
type binFile struct {
	Signed struct {
		Type    string               `json:"_type"`
		Version int64                `json:"version"`
		Expires time.Time            `json:"expires"`
		Targets map[string]binTarget `json:"targets"`
	} `json:"signed"`
}

type binTarget struct {
	Length int64             `json:"length"`
	Hashes map[string]string `json:"hashes"`
	Custom *json.RawMessage  `json:"custom,omitempty"`
}

// readBin reads the version of a bin the snapshot names, as binFile.
func (s *state) readBin(name string) (*targetsMeta, error) {
	mf := s.snapshot.Signed.Meta[name+".json"]
	if mf == nil {
		return nil, fmt.Errorf("tufrepo: snapshot version %d does not name %s", s.snapshot.Signed.Version, name)
	}
	fn := fileName(mf.Version, name)
	b, err := os.ReadFile(filepath.Join(s.dir, fn))
	if err != nil {
		return nil, fmt.Errorf("tufrepo: %w", err)
	}
	var bf binFile
	if err := json.Unmarshal(b, &bf); err != nil {
		return nil, fmt.Errorf("tufrepo: %s: %w", fn, err)
	}
	if bf.Signed.Type != metadata.TARGETS || bf.Signed.Version != mf.Version {
		return nil, fmt.Errorf("tufrepo: %s holds %s version %d", fn, bf.Signed.Type, bf.Signed.Version)
	}
	m := metadata.Targets(bf.Signed.Expires)
	m.Signed.Version = bf.Signed.Version
	for p, t := range bf.Signed.Targets {
		tf := &metadata.TargetFiles{Length: t.Length, Hashes: metadata.Hashes{}, Path: p, Custom: t.Custom}
		for alg, h := range t.Hashes {
			if tf.Hashes[alg], err = hex.DecodeString(h); err != nil {
				return nil, fmt.Errorf("tufrepo: %s: %s: %w", fn, p, err)
			}
		}
		m.Signed.Targets[p] = tf
	}
	return m, nil
}
