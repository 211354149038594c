package tufrepo

import (
	"path/filepath"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/pkg/wire"
)

// RoleStatus is one role of a repository.
type RoleStatus struct {
	Name      string
	Version   int64 // 0: not written yet
	Expires   time.Time
	KeyIDs    []string
	Threshold int
	Paths     int // path patterns of a team role
	Targets   int // targets it lists itself
	Bins      int // hashed bins it delegates to
}

// Status describes a tree's repository and what is staged for it.
type Status struct {
	RootVersion      int64
	Generation       int64
	TimestampVersion int64
	Roles            []RoleStatus
	StagedIn         string // "" when nothing is staged
	StagedKind       string
	Needs            []Need
	// Gates are the signed gates of TREE/-/tuf/rollout.json (nil: none);
	// GatesErr says why they do not verify with the newest root.
	Gates    *wire.Gates
	GatesErr error
}

// Stat reads and verifies tree's repository; staging "" is the default
// staging directory.
func Stat(tree, staging string) (*Status, error) {
	s, err := load(tree)
	if err != nil {
		return nil, err
	}
	st := &Status{RootVersion: s.root.Signed.Version, Generation: s.generation()}
	st.Roles = append(st.Roles, RoleStatus{Name: metadata.ROOT, Version: s.root.Signed.Version, Expires: s.root.Signed.Expires,
		KeyIDs: s.root.Signed.Roles[metadata.ROOT].KeyIDs, Threshold: s.root.Signed.Roles[metadata.ROOT].Threshold})
	if s.timestamp != nil {
		st.TimestampVersion = s.timestamp.Signed.Version
		e := rootEntry(s.root, metadata.TIMESTAMP)
		st.Roles = append(st.Roles, RoleStatus{Name: metadata.TIMESTAMP, Version: s.timestamp.Signed.Version,
			Expires: s.timestamp.Signed.Expires, KeyIDs: e.keyIDs, Threshold: e.threshold})
		e = rootEntry(s.root, metadata.SNAPSHOT)
		st.Roles = append(st.Roles, RoleStatus{Name: metadata.SNAPSHOT, Version: s.snapshot.Signed.Version,
			Expires: s.snapshot.Signed.Expires, KeyIDs: e.keyIDs, Threshold: e.threshold})
	}
	if e := rootEntry(s.root, wire.RolloutRole); len(e.keyIDs) > 0 {
		rs := RoleStatus{Name: wire.RolloutRole, KeyIDs: e.keyIDs, Threshold: e.threshold}
		var ok bool
		st.Gates, rs.Version, rs.Expires, ok, st.GatesErr = HeldGates(tree)
		if !ok {
			st.Gates = nil
		}
		st.Roles = append(st.Roles, rs)
	}
	leaves, _ := s.leafRoles()
	names := []string{metadata.TARGETS}
	paths := map[string]int{}
	for _, l := range leaves {
		names = append(names, l.Name)
		paths[l.Name] = len(l.Paths)
	}
	for _, n := range names {
		rs := RoleStatus{Name: n, Paths: paths[n]}
		if e, ok := s.entries[n]; ok {
			rs.KeyIDs, rs.Threshold = e.keyIDs, e.threshold
		} else if n == metadata.TARGETS {
			e := rootEntry(s.root, n)
			rs.KeyIDs, rs.Threshold = e.keyIDs, e.threshold
		}
		if m := s.roles[n]; m != nil {
			rs.Version, rs.Expires, rs.Targets = m.Signed.Version, m.Signed.Expires, len(m.Signed.Targets)
			if d := m.Signed.Delegations; d != nil && d.SuccinctRoles != nil {
				_, rs.Bins = d.SuccinctRoles.GetSuffixLen()
				for _, b := range d.SuccinctRoles.GetRoles() {
					if bm := s.roles[b]; bm != nil {
						rs.Targets += len(bm.Signed.Targets)
					}
				}
			}
		}
		st.Roles = append(st.Roles, rs)
	}
	dir := stagingDir(s.tree, staging)
	if m, err := readManifest(dir); err == nil {
		st.StagedIn, st.StagedKind = dir, m.Kind
		var files []outFile
		for _, f := range m.Files {
			b, err := readBounded(filepath.Join(dir, f.Name))
			if err != nil {
				return nil, err
			}
			files = append(files, outFile{name: f.Name, role: f.Role, data: b, signers: f.Signers})
		}
		if st.Needs, err = needsOf(files); err != nil {
			return nil, err
		}
	}
	return st, nil
}
