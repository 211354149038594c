// Fetch and Sync: bringing objects of the catalog into the directory.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/relayd/relayd/internal/atomicfile"
	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/digest"
)

// Result says what a Fetch or Sync did.
type Result struct {
	// Generation is the catalog generation worked from.
	Generation uint64 `json:"generation"`
	// Downloaded objects and their bytes.
	Downloaded int   `json:"downloaded"`
	Bytes      int64 `json:"bytes"`
	// UpToDate objects were already in place with the right digest.
	UpToDate int `json:"up_to_date"`
	// Failed objects could not be fetched (the error says why).
	Failed int `json:"failed"`
	// Ring is the agent's ring in the rollout gates ("" when the trusted
	// root lists no rollout role).
	Ring string `json:"ring,omitempty"`
	// Held is the newest generation when the ring's gate holds it back
	// (Generation is then the one the ring is open at, or the one kept).
	Held uint64 `json:"held,omitempty"`
}

// Fetch brings the named catalog paths into Dir (or verifies them, with
// Discard), from the newest catalog. A path already in place with the
// right digest is not downloaded again; a path named twice ("a", "/a") is
// fetched once. A backslash in a path is read as a slash ("docs\a" is
// "docs/a"). A path that is not the same file name on every system
// ("a:b", "nul.txt", "a.") is refused, whatever the system.
func (a *Agent) Fetch(ctx context.Context, paths ...string) (Result, error) {
	res, err := a.fetch(ctx, paths)
	return res, a.saveState(err)
}

// fetch is Fetch but for saving the state.
func (a *Agent) fetch(ctx context.Context, paths []string) (Result, error) {
	c, err := a.catalog(ctx, 0)
	if err != nil {
		return Result{}, err
	}
	var objs []catalog.Object
	seen := make(map[string]bool, len(paths))
	for _, p := range paths {
		// No catalog path holds a backslash: one is a separator, as
		// Windows users type them ("docs\a.txt").
		p = strings.ReplaceAll(p, `\`, "/")
		p = strings.TrimPrefix(path.Clean("/"+p), "/")
		if seen[p] {
			// Two downloads of one path would race for its temporary
			// file.
			continue
		}
		seen[p] = true
		o, ok := c.Lookup(p)
		if !ok {
			return Result{Generation: c.Generation}, fmt.Errorf("agent: fetch %s: %w (generation %d)", p, ErrNotInCatalog, c.Generation)
		}
		if _, err := checkPath(p); err != nil {
			return Result{Generation: c.Generation}, err
		}
		objs = append(objs, o)
	}
	return a.bring(ctx, c, objs)
}

// Sync brings Dir up to the newest catalog: every object Include selects
// that is missing or differs is downloaded. Files the catalog no longer
// lists are left alone.
func (a *Agent) Sync(ctx context.Context) (Result, error) {
	return a.syncTo(ctx, 0)
}

// syncTo is Sync preferring a relay that has generation want.
func (a *Agent) syncTo(ctx context.Context, want uint64) (Result, error) {
	res, err := a.sync(ctx, want)
	if err = a.saveState(err); err != nil {
		return res, err
	}
	a.stats.syncs.Add(1)
	return res, nil
}

// sync is syncTo but for saving the state and counting the sync.
func (a *Agent) sync(ctx context.Context, want uint64) (Result, error) {
	if want == gatesWish {
		want = 0
	}
	newest, err := a.catalog(ctx, want)
	if err != nil {
		return Result{}, err
	}
	gt, err := a.gate(ctx, newest)
	if err != nil {
		return Result{Generation: a.state.synced()}, err
	}
	if gt.c == nil {
		return Result{Generation: a.state.synced(), Ring: gt.ring, Held: gt.held}, nil
	}
	res, err := a.syncCatalog(ctx, gt.c)
	res.Ring, res.Held = gt.ring, gt.held
	return res, err
}

// syncCatalog brings Dir to catalog c.
func (a *Agent) syncCatalog(ctx context.Context, c *catalog.Catalog) (Result, error) {
	var objs []catalog.Object
	keep := make(map[string]bool)
	var refused []error
	folded := make(map[string]bool) // paths in one case
	for _, o := range c.Objects {
		if !a.include.Match(o.Path) {
			continue
		}
		if _, err := checkPath(o.Path); err != nil {
			refused = append(refused, err)
			continue
		}
		// "A.txt" and "a.txt" are one file on macOS and Windows: two
		// downloads would replace each other at every sync. The first
		// in catalog order is written, on every system alike.
		f := strings.ToLower(strings.ToUpper(o.Path))
		if folded[f] {
			refused = append(refused, fmt.Errorf("agent: %s differs from another catalog path only in case", o.Path))
			continue
		}
		folded[f] = true
		objs = append(objs, o)
		keep[o.Path] = true
	}
	if len(refused) > 0 {
		// Said once per sync, not once per path: a catalog may hold many.
		a.log.Warn().Err(refused[0]).Int("paths", len(refused)).Uint64("generation", c.Generation).
			Msg("catalog paths not written: reserved for the agent, or not the same file name on every system")
	}
	res, err := a.bring(ctx, c, objs)
	if err != nil {
		return res, err
	}
	a.state.syncedTo(c.Generation, keep)
	return res, nil
}

// saveState saves the state after a Fetch, Sync or Catalog whatever its
// outcome, so that the generation seen and the files written stay known,
// and adds a failure to save to err.
func (a *Agent) saveState(err error) error {
	serr := a.state.save()
	switch {
	case serr == nil:
		return err
	case err == nil:
		return serr
	}
	return errors.Join(err, serr)
}

// bring downloads those of objs that are not in place yet, Workers at a
// time. objs must not name a path twice.
func (a *Agent) bring(ctx context.Context, c *catalog.Catalog, objs []catalog.Object) (Result, error) {
	res := Result{Generation: c.Generation}
	var root *os.Root
	if !a.cfg.Discard {
		if err := os.MkdirAll(a.cfg.Dir, 0o755); err != nil {
			return res, fmt.Errorf("agent: %w", err)
		}
		var err error
		if root, err = os.OpenRoot(a.cfg.Dir); err != nil {
			return res, fmt.Errorf("agent: %w", err)
		}
		defer root.Close()
	}
	var todo []catalog.Object
	var total int64
	for _, o := range objs {
		ok, err := a.inPlace(root, o)
		if err != nil {
			return res, fmt.Errorf("agent: check %s: %w", o.Path, err)
		}
		if ok {
			res.UpToDate++
			continue
		}
		todo = append(todo, o)
		total += o.Size
	}
	if a.cfg.OnPlan != nil {
		a.cfg.OnPlan(len(todo), total)
	}
	var (
		mu   sync.Mutex
		errs []error
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(a.cfg.Workers)
	for _, o := range todo {
		g.Go(func() error {
			err := a.bringOne(gctx, root, c.Generation, o)
			if a.cfg.OnObject != nil {
				a.cfg.OnObject(o.Path, o.Size, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Failed++
				errs = append(errs, err)
				if errors.Is(err, errFatal) {
					return err // the disk will not get better: stop
				}
				return nil
			}
			res.Downloaded++
			res.Bytes += o.Size
			return nil
		})
	}
	_ = g.Wait()
	if len(errs) > 0 {
		return res, fmt.Errorf("agent: %d of %d objects failed: %w", res.Failed, len(todo), errors.Join(errs...))
	}
	return res, nil
}

// bringOne downloads one object into place.
func (a *Agent) bringOne(ctx context.Context, root *os.Root, gen uint64, o catalog.Object) error {
	if root == nil {
		if err := a.fetchObject(ctx, gen, o, discardSink{}); err != nil {
			return err
		}
		a.state.setFile(o.Path, fileRecord{Size: o.Size, SHA256: o.Digest})
		a.stats.objects.Add(1)
		return nil
	}
	s, err := newFileSink(root, o.Path)
	if err != nil {
		return fmt.Errorf("agent: fetch %s: %w", o.Path, err)
	}
	if err := a.fetchObject(ctx, gen, o, s); err != nil {
		s.abort()
		return err
	}
	fi, err := s.commit()
	if errors.Is(err, atomicfile.ErrInUse) {
		// Another program holds the old file (Windows): the other
		// objects can still be written, and the next sync tries again.
		return fmt.Errorf("agent: fetch %s: %w", o.Path, err)
	}
	if err != nil {
		return fmt.Errorf("agent: fetch %s: %w", o.Path, fatal(err))
	}
	a.state.setFile(o.Path, fileRecord{Size: fi.Size(), MTime: fi.ModTime().UnixNano(), SHA256: o.Digest})
	a.stats.objects.Add(1)
	return nil
}

// inPlace reports whether o is already in the directory with its digest.
// The digest of a file is cached in the state by size and modification
// time, so an unchanged tree is not hashed again.
func (a *Agent) inPlace(root *os.Root, o catalog.Object) (bool, error) {
	rec, known := a.state.file(o.Path)
	if root == nil {
		return known && rec.SHA256 == o.Digest && rec.Size == o.Size, nil
	}
	local := filepath.FromSlash(o.Path) // checkPath accepted it
	fi, err := root.Lstat(local)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.Mode().IsRegular()) {
		return false, nil
	}
	if err != nil {
		// A parent that is a file, a permission problem: download, and
		// let the write say what is wrong.
		return false, nil
	}
	if fi.Size() != o.Size {
		return false, nil
	}
	mtime := fi.ModTime().UnixNano()
	if known && rec.Size == fi.Size() && rec.MTime == mtime {
		return rec.SHA256 == o.Digest, nil
	}
	f, err := root.Open(local)
	if err != nil {
		return false, nil
	}
	defer f.Close()
	d, _, err := digest.FromReader(f)
	if err != nil {
		return false, err
	}
	a.state.setFile(o.Path, fileRecord{Size: fi.Size(), MTime: mtime, SHA256: d})
	return d == o.Digest, nil
}
