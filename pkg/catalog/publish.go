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
	"time"

	"github.com/relayd/relayd/internal/atomicfile"
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
	if err := keyOutside(absTree, tree, opt.KeyFile); err != nil {
		return nil, err
	}
	pub := key.Public().(ed25519.PublicKey)
	prev, err := previous(absTree, pub)
	if err != nil {
		return nil, err
	}
	paths, err := ListTree(absTree)
	if err != nil {
		return nil, err
	}
	objects, hashed, err := HashFiles(ctx, absTree, paths, opt.Workers)
	if err != nil {
		return nil, err
	}
	c := &Catalog{Generation: 1, Published: opt.Now().UTC().Truncate(time.Second), Objects: objects}
	res := &PublishResult{Files: len(objects), Bytes: hashed}
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

// keyOutside refuses a key file inside the tree (it would be published).
func keyOutside(absTree, tree, keyFile string) error {
	if keyFile == "" {
		return nil
	}
	absKey, err := filepath.Abs(keyFile)
	if err == nil {
		if rel, err := filepath.Rel(absTree, absKey); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return fmt.Errorf("catalog: the key %s lies inside the tree %s and would be published; keep it elsewhere", keyFile, tree)
		}
	}
	return nil
}

// previous is the tree's existing catalog, verified with pub; nil if none.
func previous(absTree string, pub ed25519.PublicKey) (*Signed, error) {
	b, err := os.ReadFile(filepath.Join(absTree, filepath.FromSlash(File)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	prev, err := Parse(b, pub)
	if err != nil {
		return nil, fmt.Errorf("catalog: the existing %s does not verify with this key (%w); refusing to publish a generation that may go back", File, err)
	}
	return prev, nil
}

// writeAtomic writes the catalog file at path (0644): readers see the old
// catalog or the new one, never a part.
func writeAtomic(path string, b []byte) error {
	if err := atomicfile.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("catalog: write %s: %w", path, err)
	}
	return nil
}
