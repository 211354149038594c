package tufrepo

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/relayd/relayd/pkg/catalog"
)

// Options tune the commands that write metadata.
type Options struct {
	// Now stamps expiries. Default time.Now.
	Now func() time.Time
	// Expiry are the lifetimes of what is signed. Default DefaultExpiries.
	Expiry Expiries
	// Staging is where a change short of signatures goes. Default
	// TREE/../<tree>.tuf-staged.
	Staging string
	// Workers hash files and sign roles in parallel. Default: the number
	// of CPUs.
	Workers int
	// MaxDirectTargets is the most targets a leaf role lists itself
	// before it delegates to hashed bins. Default DefaultMaxDirectTargets.
	MaxDirectTargets int
}

func (o Options) complete() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Expiry = o.Expiry.complete()
	o.Workers = defaultWorkers(o.Workers)
	if o.MaxDirectTargets <= 0 {
		o.MaxDirectTargets = DefaultMaxDirectTargets
	}
	return o
}

// PublishResult says what Publish did.
type PublishResult struct {
	Result
	Generation int64 // the snapshot version now (or staged)
	Changed    bool  // false: the tree matched the repository; nothing was written
	Files      int   // targets listed
	Bytes      int64 // bytes hashed
}

// Publish hashes every regular file of tree (outside TREE/-/), lists them
// as targets of the leaf roles and writes the roles whose content changed,
// then a snapshot (the next generation) and a timestamp. An unchanged
// tree writes nothing. Roles whose keys ring lacks are staged with the
// rest of the generation (Result.Needs).
func Publish(ctx context.Context, tree string, ring *KeyRing, opt Options) (*PublishResult, error) {
	opt = opt.complete()
	s, unlock, err := openLocked(tree)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := keysOutside(s.tree, ring); err != nil {
		return nil, err
	}
	paths, err := catalog.ListTree(s.tree)
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		if strings.Count(p, "/") >= MaxDepth {
			return nil, fmt.Errorf("tufrepo: %s is deeper than %d levels; relayd does not publish it", p, MaxDepth)
		}
	}
	objects, hashed, err := catalog.HashFiles(ctx, s.tree, paths, opt.Workers)
	if err != nil {
		return nil, err
	}
	targets, err := targetFiles(objects)
	if err != nil {
		return nil, err
	}
	res := &PublishResult{Files: len(objects), Bytes: hashed, Generation: s.generation()}
	c, err := s.nextGeneration(ring, opt, targets, nil)
	if err != nil || c == nil {
		return res, err
	}
	r, err := apply(s, c, stagingDir(s.tree, opt.Staging))
	if err != nil {
		return nil, err
	}
	res.Result, res.Changed = *r, true
	if c.hasSnapshot() {
		res.Generation++
	}
	return res, nil
}

// nextGeneration builds the change listing targets; leaves (nil: the
// installed delegations) are the leaf roles in order.
func (s *state) nextGeneration(ring *KeyRing, opt Options, targets map[string]*targetsMetaFiles, leaves *leafLayout) (*change, error) {
	b := &builder{s: s, ring: ring, now: opt.Now().UTC().Truncate(time.Second), exp: opt.Expiry,
		maxDirect: opt.MaxDirectTargets, workers: opt.Workers}
	l := leaves
	if l == nil {
		ls, keys := s.leafRoles()
		l = &leafLayout{roles: ls, keys: keys}
	}
	if err := b.build(l.roles, l.keys, targets); err != nil {
		return nil, err
	}
	return b.finish()
}

// keysOutside refuses key files inside the tree (they would be published).
func keysOutside(absTree string, ring *KeyRing) error {
	for _, k := range ring.keys {
		abs, err := filepath.Abs(k.path)
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(absTree, abs); err == nil && rel != ".." && !startsWithDotDot(rel) {
			return fmt.Errorf("tufrepo: the key %s lies inside the tree %s and would be published; keep it elsewhere", k.path, absTree)
		}
	}
	return nil
}
