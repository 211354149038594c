package catalog

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/relayd/relayd/internal/atomicfile"
	"github.com/relayd/relayd/pkg/cleanpath"
	"github.com/relayd/relayd/pkg/digest"
)

// Dir is the directory in a published tree that holds the catalog, and
// File the catalog's path relative to the tree: a static server holding
// the tree serves it at /-/catalog, where a relayd node does.
const (
	Dir  = "-"
	File = "-/catalog"
)

// PublishOptions tune Publish.
type PublishOptions struct {
	// KeyFile is where the private key was read from; a key inside the
	// tree is refused (it would be published). Optional.
	KeyFile string
	// Workers hash files in parallel. Default: the number of CPUs.
	Workers int
	// Now stamps the catalog. Default time.Now.
	Now func() time.Time
}

// PublishResult says what Publish did.
type PublishResult struct {
	Catalog *Signed
	Changed bool  // false: the tree matched the existing catalog
	Files   int   // objects listed
	Bytes   int64 // bytes hashed
}

// Publish walks tree, hashes every regular file (in parallel, sha256 via
// digest.NewHash) and writes the signed catalog to tree/-/catalog
// atomically. If the tree's objects equal those of the existing catalog,
// nothing is written and the generation stays; otherwise it is the
// existing generation plus one. An existing catalog that does not verify
// with key is an error: the generation must never go back.
func Publish(ctx context.Context, tree string, key ed25519.PrivateKey, opt PublishOptions) (*PublishResult, error) {
	if opt.Workers <= 0 {
		opt.Workers = runtime.NumCPU()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	absTree, err := filepath.Abs(tree)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	if opt.KeyFile != "" {
		absKey, err := filepath.Abs(opt.KeyFile)
		if err == nil {
			if rel, err := filepath.Rel(absTree, absKey); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				return nil, fmt.Errorf("catalog: the key %s lies inside the tree %s and would be published; keep it elsewhere", opt.KeyFile, tree)
			}
		}
	}
	pub := key.Public().(ed25519.PublicKey)
	var prev *Signed
	if b, err := os.ReadFile(filepath.Join(absTree, filepath.FromSlash(File))); err == nil {
		if prev, err = Parse(b, pub); err != nil {
			return nil, fmt.Errorf("catalog: the existing %s does not verify with this key (%w); refusing to publish a generation that may go back", File, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("catalog: %w", err)
	}

	var paths []string
	err = filepath.WalkDir(absTree, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(absTree, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == Dir {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("catalog: %s is not a regular file (symlinks and devices are not published)", rel)
		}
		if k, err := cleanpath.Key(cleanpath.Escape(rel)); err != nil || k != rel {
			return fmt.Errorf("catalog: %s: the name cannot be published as is: %v", rel, err)
		}
		paths = append(paths, rel)
		return nil
	})
	if err != nil {
		return nil, err
	}
	objects := make([]Object, len(paths))
	var hashed atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opt.Workers)
	for i, rel := range paths {
		g.Go(func() error {
			d, n, err := hashFile(gctx, filepath.Join(absTree, filepath.FromSlash(rel)))
			if err != nil {
				return err
			}
			hashed.Add(n)
			kind, platform, version := Classify(rel)
			objects[i] = Object{Path: rel, Size: n, Digest: d, Kind: kind, Platform: platform, Version: version}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	c := &Catalog{Generation: 1, Published: opt.Now().UTC().Truncate(time.Second), Objects: objects}
	res := &PublishResult{Files: len(objects), Bytes: hashed.Load()}
	if prev != nil {
		sorted := append([]Object(nil), objects...)
		sortObjects(sorted)
		if slices.Equal(sorted, prev.Objects) {
			res.Catalog = prev
			return res, nil
		}
		c.Generation = prev.Generation + 1
	}
	file, err := Sign(c, key)
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(filepath.Join(absTree, filepath.FromSlash(File)), file); err != nil {
		return nil, err
	}
	signed, err := Parse(file, pub)
	if err != nil {
		return nil, err
	}
	res.Catalog, res.Changed = signed, true
	return res, nil
}

func hashFile(ctx context.Context, path string) (digest.Digest, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return digest.Digest{}, 0, fmt.Errorf("catalog: %w", err)
	}
	defer f.Close()
	if err := ctx.Err(); err != nil {
		return digest.Digest{}, 0, err
	}
	d, n, err := digest.FromReader(f)
	if err != nil {
		return digest.Digest{}, 0, fmt.Errorf("catalog: hash %s: %w", path, err)
	}
	return d, n, nil
}

// writeAtomic writes the catalog file at path (0644): readers see the old
// catalog or the new one, never a part.
func writeAtomic(path string, b []byte) error {
	if err := atomicfile.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("catalog: write %s: %w", path, err)
	}
	return nil
}
