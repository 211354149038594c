// The trusted set of one generation, and loading targets and every
// delegated role (5.6) in pre-order depth-first order.
package tufclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/relayd/relayd/pkg/catalog"
)

// trustedSet is one complete, verified generation.
type trustedSet struct {
	root    *metadata.Metadata[metadata.RootType]
	ts      *metadata.Metadata[metadata.TimestampType]
	tsRaw   []byte
	snap    *metadata.Metadata[metadata.SnapshotType]
	snapRaw []byte
	roles   map[string]*role // targets and every delegated role loaded
	order   []string         // roles in the order they were loaded
	catalog *catalog.Catalog
	srcs    []*metadata.TargetFiles // the entry of each of catalog.Objects
}

// role is one verified targets metadata file.
type role struct {
	md     *metadata.Metadata[metadata.TargetsType]
	raw    []byte
	parent string // the delegator it was verified against
	reused bool   // taken from the previous generation unchanged
}

// state is the State of s, verified at now.
func (s *trustedSet) state(now time.Time) *State {
	exp, who := s.root.Signed.Expires, metadata.ROOT
	earlier := func(t time.Time, name string) {
		if t.Before(exp) {
			exp, who = t, name
		}
	}
	earlier(s.ts.Signed.Expires, metadata.TIMESTAMP)
	earlier(s.snap.Signed.Expires, metadata.SNAPSHOT)
	for _, name := range s.order {
		earlier(s.roles[name].md.Signed.Expires, name)
	}
	return &State{
		Catalog:          s.catalog,
		Timestamp:        s.tsRaw,
		TimestampVersion: s.ts.Signed.Version,
		RootVersion:      s.root.Signed.Version,
		Expires:          exp,
		ExpiresRole:      who,
		Verified:         now,
	}
}

// files are the served files of s but the roots.
func (s *trustedSet) files() map[string][]byte {
	m := make(map[string][]byte, len(s.roles)+2)
	m["timestamp.json"] = s.tsRaw
	m[versioned(s.snap.Signed.Version, metadata.SNAPSHOT)] = s.snapRaw
	for name, r := range s.roles {
		m[versioned(r.md.Signed.Version, name)] = r.raw
	}
	return m
}

// loadRoles loads targets and every role it delegates to, depth first in
// delegation order, into t. A role of prev whose version is the one the
// snapshot lists, and whose delegator was itself kept, is kept without a
// fetch (its expiry is checked again); prev is nil when the root changed.
// Any role that fails to load fails the whole generation.
func (c *Client) loadRoles(ctx context.Context, t *trustedmetadata.TrustedMetadata, get getFunc, prev *trustedSet) (map[string]*role, []string, error) {
	type item struct {
		name, parent string
		depth        int
	}
	roles := map[string]*role{}
	var order []string
	stack := []item{{metadata.TARGETS, metadata.ROOT, 0}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, seen := roles[it.name]; seen {
			continue // reached through another delegator: verified once, like go-tuf
		}
		if len(roles) >= MaxRoles {
			return nil, nil, fmt.Errorf("tufclient: more than %d delegated roles", MaxRoles)
		}
		keep := prev != nil && (it.parent == metadata.ROOT || roles[it.parent].reused)
		r, err := c.loadRole(ctx, t, get, it.name, it.parent, prev, keep)
		if err != nil {
			return nil, nil, err
		}
		roles[it.name] = r
		order = append(order, it.name)
		kids, err := delegatedRoles(r.md)
		if err != nil {
			return nil, nil, fmt.Errorf("tufclient: %s: %w", it.name, err)
		}
		if len(kids) > 0 && it.depth >= MaxDepth {
			c.log.Warn().Str("role", it.name).Int("depth", it.depth).Msg("delegations deeper than the limit ignored")
			continue
		}
		if len(stack)+len(kids) > MaxRoles {
			return nil, nil, fmt.Errorf("tufclient: more than %d delegated roles", MaxRoles)
		}
		for i := len(kids) - 1; i >= 0; i-- {
			stack = append(stack, item{kids[i], it.name, it.depth + 1})
		}
	}
	return roles, order, nil
}

// loadRole verifies one role against its delegator in t.
func (c *Client) loadRole(ctx context.Context, t *trustedmetadata.TrustedMetadata, get getFunc, name, parent string, prev *trustedSet, keep bool) (*role, error) {
	meta := t.Snapshot.Signed.Meta[name+".json"]
	if meta == nil {
		return nil, fmt.Errorf("tufclient: snapshot %d does not list %s", t.Snapshot.Signed.Version, name)
	}
	if keep {
		if p := prev.roles[name]; p != nil && p.parent == parent && p.md.Signed.Version == meta.Version && meta.VerifyLengthHashes(p.raw) == nil {
			if p.md.Signed.IsExpired(t.RefTime) {
				return nil, &ExpiredError{Role: name, Since: p.md.Signed.Expires}
			}
			t.Targets[name] = p.md
			return &role{md: p.md, raw: p.raw, parent: parent, reused: true}, nil
		}
	}
	file := versioned(meta.Version, name)
	raw, err := get(ctx, file, c.limit(meta.Length))
	if err != nil {
		return nil, fmt.Errorf("tufclient: %s: %w", file, err)
	}
	md, err := t.UpdateDelegatedTargets(raw, name, parent)
	if err != nil {
		if errors.Is(err, &metadata.ErrExpiredMetadata{}) {
			if exp, perr := metadata.Targets().FromBytes(raw); perr == nil {
				return nil, &ExpiredError{Role: name, Since: exp.Signed.Expires}
			}
		}
		return nil, fmt.Errorf("tufclient: %s: %w", file, err)
	}
	return &role{md: md, raw: raw, parent: parent}, nil
}

// delegatedRoles lists the roles md delegates to, in order. It refuses
// names that cannot be served (or would collide with a top-level role)
// and hashed bins beyond MaxRoles.
func delegatedRoles(md *metadata.Metadata[metadata.TargetsType]) ([]string, error) {
	d := md.Signed.Delegations
	if d == nil {
		return nil, nil
	}
	var names []string
	switch {
	case d.Roles != nil: // go-tuf looks at Roles first, whatever else is there
		names = make([]string, 0, len(d.Roles))
		for _, r := range d.Roles {
			names = append(names, r.Name)
		}
	case d.SuccinctRoles != nil:
		s := d.SuccinctRoles
		if s.BitLength < 1 || 1<<s.BitLength > MaxRoles {
			return nil, fmt.Errorf("succinct roles: bit_length %d: want 1 to 16", s.BitLength)
		}
		names = s.GetRoles()
	}
	for _, n := range names {
		if !roleName.MatchString(n) || isTopLevel(n) {
			return nil, fmt.Errorf("delegated role name %q is not allowed (want %s, not a top-level role)", n, roleName)
		}
	}
	return names, nil
}

func isTopLevel(name string) bool {
	switch name {
	case metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP:
		return true
	}
	return false
}
