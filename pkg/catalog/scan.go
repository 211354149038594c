// Scanning a content tree: the regular files a publisher lists and their
// sha256, hashed in parallel.
package catalog

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/relayd/relayd/pkg/cleanpath"
	"github.com/relayd/relayd/pkg/digest"
)

// Dir is the directory of a published tree that holds what relayd
// writes (its TUF repository: -/tuf); it is never published as content.
const Dir = "-"

// ListTree returns the slash-separated paths of the tree's regular files,
// outside Dir; a name that cannot be published as is,
// a symlink or a device is an error.
func ListTree(absTree string) ([]string, error) {
	var paths []string
	err := filepath.WalkDir(absTree, func(p string, d fs.DirEntry, err error) error {
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
	return paths, err
}

// HashFiles hashes the files of paths, workers at a time, into the
// catalog's objects (in the order of paths), and the bytes it hashed:
// sha256 via digest.NewHash, classified by Classify. Both publishers
// (this package's and pkg/tufrepo) hash through here.
func HashFiles(ctx context.Context, absTree string, paths []string, workers int) ([]Object, int64, error) {
	objects := make([]Object, len(paths))
	var hashed atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
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
		return nil, 0, err
	}
	return objects, hashed.Load(), nil
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
