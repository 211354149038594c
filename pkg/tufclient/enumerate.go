// Enumeration: every target of every trusted role, each path given the
// entry of the role the spec's search finds first (5.6.7, go-tuf's
// preOrderDepthFirstWalk): a role's own targets before its delegations,
// delegations in order, only those whose paths (or path hash prefixes,
// or hashed bin) cover the path, a terminating delegation ending the
// search for that path, at most 32 roles visited. A role listing a path
// its delegation does not cover is never reached for it (the spec's
// extraneous dependencies), so that target is not in the catalog.
package tufclient

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/pkg/catalog"
)

// node is one role as the search sees it.
type node struct {
	targets map[string]*metadata.TargetFiles
	dels    []delegation // path delegations, in order
	bins    []string     // hashed bins (TAP 15) by number, when succinct
	bits    int          // bit_length of the bins
}

// delegation is one delegated role with its paths split once.
type delegation struct {
	name        string
	terminating bool
	patterns    [][]string // Paths, each split on "/"
	prefixes    []string   // PathHashPrefixes (used when there are no Paths)
}

// target is one path being searched: its segment count and hash are
// computed once, whatever the number of roles and levels it crosses.
type target struct {
	path   string
	nsegs  int
	sum    [sha256.Size]byte
	b64    string
	hashed bool
	buf    *[]byte // scratch for hashing without an allocation per path
}

func (p *target) segments() int {
	if p.nsegs == 0 {
		p.nsegs = strings.Count(p.path, "/") + 1
	}
	return p.nsegs
}

func (p *target) hash() *[sha256.Size]byte {
	if !p.hashed {
		if p.buf != nil {
			*p.buf = append((*p.buf)[:0], p.path...)
			p.sum = sha256.Sum256(*p.buf)
		} else {
			p.sum = sha256.Sum256([]byte(p.path))
		}
		p.hashed = true
	}
	return &p.sum
}

// base64 is the hash as go-tuf compares path_hash_prefixes with it.
func (p *target) base64() string {
	if p.b64 == "" {
		p.b64 = base64.URLEncoding.EncodeToString(p.hash()[:])
	}
	return p.b64
}

// covers is go-tuf's DelegatedRole.IsDelegatedPath.
func (d *delegation) covers(p *target) bool {
	if len(d.patterns) > 0 {
		for _, pat := range d.patterns {
			if len(pat) == p.segments() && matchSegments(pat, p.path) {
				return true
			}
		}
		return false
	}
	for _, pre := range d.prefixes {
		if strings.HasPrefix(p.base64(), pre) {
			return true
		}
	}
	return false
}

// matchSegments is go-tuf's isTargetInPathPattern for a pattern split on
// "/" and a path with as many segments: each segment matches its pattern
// (filepath.Match; "*" never crosses a "/").
func matchSegments(pat []string, path string) bool {
	rest := path
	for i, ps := range pat {
		seg := rest
		if i < len(pat)-1 {
			seg, rest, _ = strings.Cut(rest, "/")
		}
		if ok, _ := filepath.Match(ps, seg); !ok {
			return false
		}
	}
	return true
}

// tree is every loaded role by name.
type tree map[string]*node

func newTree(roles map[string]*role) tree {
	tr := make(tree, len(roles))
	for name, r := range roles {
		n := &node{targets: r.md.Signed.Targets}
		if d := r.md.Signed.Delegations; d != nil {
			switch {
			case d.Roles != nil:
				for _, dr := range d.Roles {
					del := delegation{name: dr.Name, terminating: dr.Terminating, prefixes: dr.PathHashPrefixes}
					for _, p := range dr.Paths {
						del.patterns = append(del.patterns, strings.Split(p, "/"))
					}
					n.dels = append(n.dels, del)
				}
			case d.SuccinctRoles != nil:
				n.bins, n.bits = d.SuccinctRoles.GetRoles(), d.SuccinctRoles.BitLength
			}
		}
		tr[name] = n
	}
	return tr
}

// searcher holds the buffers of one enumeration.
type searcher struct {
	tr      tree
	stack   []string
	visited []string
	kids    []string
	buf     []byte
}

// search returns the role whose entry for p the spec's search takes, and
// the entry; nil if no role reached lists p.
func (s *searcher) search(p *target) (*node, *metadata.TargetFiles) {
	s.stack = append(s.stack[:0], metadata.TARGETS)
	s.visited = s.visited[:0]
	for len(s.visited) <= maxVisit && len(s.stack) > 0 {
		name := s.stack[len(s.stack)-1]
		s.stack = s.stack[:len(s.stack)-1]
		if slices.Contains(s.visited, name) {
			continue
		}
		n := s.tr[name]
		if n == nil {
			continue // not loaded: deeper than MaxDepth, never reached in maxVisit
		}
		if tf, ok := n.targets[p.path]; ok {
			return n, tf
		}
		s.visited = append(s.visited, name)
		if n.bins != nil {
			// TAP 15: one bin, terminating.
			bin := binary.BigEndian.Uint32(p.hash()[:4]) >> (32 - n.bits)
			s.stack = append(s.stack[:0], n.bins[bin])
			continue
		}
		s.kids = s.kids[:0]
		for i := range n.dels {
			d := &n.dels[i]
			if !d.covers(p) {
				continue
			}
			s.kids = append(s.kids, d.name)
			if d.terminating {
				s.stack = s.stack[:0]
				break
			}
		}
		for i := len(s.kids) - 1; i >= 0; i-- {
			s.stack = append(s.stack, s.kids[i])
		}
	}
	return nil, nil
}

// enumerate builds the catalog of generation from the loaded roles: each
// target path once, from the role that wins it. It returns, aligned with
// the catalog's objects, the entries they were made from; an entry of
// prev (a role kept from the previous generation) is not converted again.
func enumerate(roles map[string]*role, order []string, generation int64, prev *trustedSet) (*catalog.Catalog, []*metadata.TargetFiles, error) {
	s := &searcher{tr: newTree(roles)}
	total := 0
	for _, r := range roles {
		total += len(r.md.Signed.Targets)
	}
	type won struct {
		path string
		tf   *metadata.TargetFiles
	}
	wins := make([]won, 0, total)
	for _, name := range order {
		n := s.tr[name]
		for path := range n.targets {
			p := target{path: path, buf: &s.buf}
			if w, tf := s.search(&p); w == n {
				wins = append(wins, won{path, tf})
			} // else another role wins this path, or none may list it
		}
	}
	slices.SortFunc(wins, func(a, b won) int { return strings.Compare(a.path, b.path) })
	objs := make([]catalog.Object, len(wins))
	srcs := make([]*metadata.TargetFiles, len(wins))
	for i, w := range wins {
		srcs[i] = w.tf
		if o, ok := prev.converted(w.path, w.tf); ok {
			objs[i] = o
			continue
		}
		o, err := catalog.FromTarget(w.path, w.tf)
		if err != nil {
			return nil, nil, fmt.Errorf("tufclient: generation %d: %w", generation, err)
		}
		objs[i] = o
	}
	cat, err := catalog.New(uint64(generation), time.Time{}, objs)
	if err != nil {
		return nil, nil, fmt.Errorf("tufclient: generation %d: %w", generation, err)
	}
	return cat, srcs, nil
}

// converted is the object s made from the very entry tf for path, if any.
func (s *trustedSet) converted(path string, tf *metadata.TargetFiles) (catalog.Object, bool) {
	if s == nil {
		return catalog.Object{}, false
	}
	objs := s.catalog.Objects
	i, ok := slices.BinarySearchFunc(objs, path, func(o catalog.Object, p string) int { return strings.Compare(o.Path, p) })
	if !ok || s.srcs[i] != tf {
		return catalog.Object{}, false
	}
	return objs[i], true
}
