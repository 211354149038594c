// Init, Delegate and Rotate: the repository's roles and keys.
package tufrepo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/pkg/wire"
)

// TopRoles are the top-level roles, in the order they are shown.
var TopRoles = []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP}

// RoleKeys are a role's public keys and threshold.
type RoleKeys struct {
	Keys      []*metadata.Key
	Threshold int // default 1
}

// Init writes TREE/-/tuf/1.root.json naming keys for every top-level
// role (consistent snapshots, root expiry opt.Expiry.Root) and, when keys
// has one, for the rollout role (wire.RolloutRole), signed with
// the ring's root keys; with fewer than the root threshold at hand it is
// staged. A tree that has a root already is refused.
func Init(tree string, ring *KeyRing, keys map[string]RoleKeys, opt Options) (*Result, error) {
	opt = opt.complete()
	abs, dir, err := metaDir(tree)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, fileName(1, metadata.ROOT))); err == nil {
		return nil, fmt.Errorf("tufrepo: %s has a repository already (%s/1.root.json); rotate keys with relayd tuf rotate", tree, Dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("tufrepo: %w", err)
	}
	root := metadata.Root(opt.Now().UTC().Truncate(1e9).Add(opt.Expiry.Root))
	for _, r := range TopRoles {
		rk, ok := keys[r]
		if !ok || len(rk.Keys) == 0 {
			return nil, fmt.Errorf("tufrepo: no key for the %s role", r)
		}
		if err := setRoleKeys(root, r, rk); err != nil {
			return nil, err
		}
	}
	if rk, ok := keys[wire.RolloutRole]; ok && len(rk.Keys) > 0 {
		root.Signed.Roles[wire.RolloutRole] = &metadata.Role{KeyIDs: []string{}}
		if err := setRoleKeys(root, wire.RolloutRole, rk); err != nil {
			return nil, err
		}
	}
	s := &state{tree: abs, dir: dir}
	return writeRoot(s, ring, root, opt)
}

func setRoleKeys(root *rootMeta, r string, rk RoleKeys) error {
	root.Signed.Roles[r].KeyIDs = []string{}
	for _, k := range rk.Keys {
		if err := root.Signed.AddKey(k, r); err != nil {
			return fmt.Errorf("tufrepo: %s key: %w", r, err)
		}
	}
	th := max(rk.Threshold, 1)
	if th > len(root.Signed.Roles[r].KeyIDs) {
		return fmt.Errorf("tufrepo: %s threshold %d is more than its %d keys", r, th, len(root.Signed.Roles[r].KeyIDs))
	}
	root.Signed.Roles[r].Threshold = th
	return nil
}

// writeRoot signs root (by s.root's root keys too, if any) and installs
// or stages it.
func writeRoot(s *state, ring *KeyRing, root *rootMeta, opt Options) (*Result, error) {
	c := &change{kind: kindRoot}
	e := rootEntry(root, metadata.ROOT)
	ids := slices.Clone(e.keyIDs)
	var old entry
	if s.root != nil {
		c.baseRoot = s.root.Signed.Version
		old = rootEntry(s.root, metadata.ROOT)
		for _, id := range old.keyIDs {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	if err := c.addSigned(ring, root, fileName(root.Signed.Version, metadata.ROOT), metadata.ROOT, entry{keyIDs: ids, threshold: e.threshold}); err != nil {
		return nil, err
	}
	c.files[0].signers = []signerSet{{KeyIDs: e.keyIDs, Threshold: e.threshold}}
	if s.root != nil {
		c.files[0].signers = append([]signerSet{{KeyIDs: old.keyIDs, Threshold: old.threshold}}, c.files[0].signers...)
	}
	return apply(s, c, stagingDir(s.tree, opt.Staging))
}

// Rotation changes a top-level role's keys in a new root version.
type Rotation struct {
	Role      string          // root, targets, snapshot, timestamp or rollout
	Add       []*metadata.Key // keys to add
	Remove    []string        // key IDs to remove
	Threshold int             // new threshold; 0 keeps it
}

// Rotate writes root version N+1 with r applied, signed by the root
// threshold of version N and of N+1 (staged when the ring lacks keys).
// After new targets, snapshot or timestamp keys, the next publish
// re-signs those roles. Keys added to the rollout role create it (gates
// become mandatory for agents); removing its last key removes it.
func Rotate(tree string, ring *KeyRing, r Rotation, opt Options) (*Result, error) {
	opt = opt.complete()
	s, unlock, err := openLocked(tree)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if !slices.Contains(TopRoles, r.Role) && r.Role != wire.RolloutRole {
		return nil, fmt.Errorf("tufrepo: rotate %q: want root, targets, snapshot, timestamp or %s", r.Role, wire.RolloutRole)
	}
	next := &rootMeta{}
	b, err := s.root.ToBytes(false)
	if err != nil {
		return nil, err
	}
	if _, err := next.FromBytes(b); err != nil {
		return nil, err
	}
	next.ClearSignatures()
	next.Signed.Version++
	next.Signed.Expires = opt.Now().UTC().Truncate(1e9).Add(opt.Expiry.Root)
	if next.Signed.Roles[r.Role] == nil && len(r.Add) > 0 {
		next.Signed.Roles[r.Role] = &metadata.Role{KeyIDs: []string{}, Threshold: 1}
	}
	for _, k := range r.Add {
		if err := next.Signed.AddKey(k, r.Role); err != nil {
			return nil, fmt.Errorf("tufrepo: %w", err)
		}
	}
	for _, id := range r.Remove {
		if err := next.Signed.RevokeKey(id, r.Role); err != nil {
			return nil, fmt.Errorf("tufrepo: remove %s from %s: %w", id, r.Role, err)
		}
	}
	role := next.Signed.Roles[r.Role]
	if role == nil {
		return nil, fmt.Errorf("tufrepo: root version %d has no %s role: add keys to create it", s.root.Signed.Version, r.Role)
	}
	if r.Role == wire.RolloutRole && len(role.KeyIDs) == 0 && len(r.Remove) > 0 {
		delete(next.Signed.Roles, r.Role) // its last key removed: no gating
		return writeRoot(s, ring, next, opt)
	}
	if r.Threshold > 0 {
		role.Threshold = r.Threshold
	}
	if len(role.KeyIDs) == 0 || role.Threshold > len(role.KeyIDs) {
		return nil, fmt.Errorf("tufrepo: %s would have threshold %d of %d keys", r.Role, role.Threshold, len(role.KeyIDs))
	}
	return writeRoot(s, ring, next, opt)
}

// Delegation is a team role: the paths it alone signs, its keys and
// threshold.
type Delegation struct {
	Role      string
	Paths     []string // operator patterns (ExpandPaths): "security/**"
	Keys      []*metadata.Key
	Threshold int  // default 1
	Remove    bool // remove the role (its targets go to the next role that takes them)
}

// Delegate adds (or replaces, in place) a team role in top-level targets,
// before rest, and writes the generation that moves the targets of its
// paths into it, re-signing top-level targets with the ring's targets
// keys. The targets listed are those of the installed generation (no
// hashing): publish first.
func Delegate(ctx context.Context, tree string, ring *KeyRing, d Delegation, opt Options) (*Result, error) {
	opt = opt.complete()
	if !roleName.MatchString(d.Role) || slices.Contains(TopRoles, d.Role) || d.Role == Rest || containsBin(d.Role) {
		return nil, fmt.Errorf("tufrepo: role name %q: want [a-z0-9][a-z0-9-]*, not a top-level role, %q or a name with %q", d.Role, Rest, binSuffix+"-")
	}
	s, unlock, err := openLocked(tree)
	if err != nil {
		return nil, err
	}
	defer unlock()
	leaves, keys := s.leafRoles()
	if leaves, err = withDelegation(leaves, keys, d); err != nil {
		return nil, err
	}
	c, err := s.nextGeneration(ring, opt, s.currentTargets(), &leafLayout{roles: leaves, keys: usedKeys(leaves, keys)})
	if err != nil {
		return nil, err
	}
	if c == nil {
		return &Result{}, nil
	}
	return apply(s, c, stagingDir(s.tree, opt.Staging))
}

func containsBin(name string) bool {
	for i := 0; i+len(binSuffix)+1 <= len(name); i++ {
		if name[i:i+len(binSuffix)+1] == binSuffix+"-" {
			return true
		}
	}
	return false
}

// withDelegation applies d to leaves (rest last), adding d's keys to keys.
func withDelegation(leaves []metadata.DelegatedRole, keys map[string]*metadata.Key, d Delegation) ([]metadata.DelegatedRole, error) {
	i := slices.IndexFunc(leaves, func(l metadata.DelegatedRole) bool { return l.Name == d.Role })
	if d.Remove {
		if i < 0 {
			return nil, fmt.Errorf("tufrepo: no role %q to remove", d.Role)
		}
		return slices.Delete(leaves, i, i+1), nil
	}
	paths, err := ExpandPaths(d.Paths)
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 || len(d.Keys) == 0 {
		return nil, fmt.Errorf("tufrepo: role %s: want paths and at least one key", d.Role)
	}
	nd := metadata.DelegatedRole{Name: d.Role, Threshold: max(d.Threshold, 1), Terminating: true, Paths: paths}
	for _, k := range d.Keys {
		id, err := k.ID()
		if err != nil {
			return nil, err
		}
		if !slices.Contains(nd.KeyIDs, id) {
			nd.KeyIDs = append(nd.KeyIDs, id)
		}
		keys[id] = k
	}
	if nd.Threshold > len(nd.KeyIDs) {
		return nil, fmt.Errorf("tufrepo: role %s: threshold %d is more than its %d keys", d.Role, nd.Threshold, len(nd.KeyIDs))
	}
	if i >= 0 {
		leaves[i] = nd
		return leaves, nil
	}
	return slices.Insert(leaves, len(leaves)-1, nd), nil
}

// usedKeys keeps the keys some leaf lists.
func usedKeys(leaves []metadata.DelegatedRole, keys map[string]*metadata.Key) map[string]*metadata.Key {
	out := map[string]*metadata.Key{}
	for _, l := range leaves {
		for _, id := range l.KeyIDs {
			out[id] = keys[id]
		}
	}
	return out
}
