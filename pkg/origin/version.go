package origin

// Consistent target names at the origin: dir/<sha256>.name is dir/name
// when that file's bytes hash to it. The published tree holds each path
// once, at its newest version; a relay that asks for a version by that
// name (a ring installing an older generation) gets it here only while
// it is still the newest, else 404 (its relays hold the older one).

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/object"
)

// maxVersionHashes bounds the digests the origin remembers of its files
// (by path, modification time and size), so that asking for versions by
// name costs one hash per file version, not one per request.
const maxVersionHashes = 4096

// fileVersion identifies one version of a file on disk.
type fileVersion struct {
	path  string
	mtime time.Time
	size  int64
}

// hashes remembers the sha256 of file versions. Hashing is done one file
// at a time (busy): anyone who reaches the origin can name any path with a
// made-up digest, and a file not remembered is read whole to check it —
// at most one core's worth of that, whatever the number of such requests.
type hashes struct {
	mu   sync.Mutex
	m    map[fileVersion]digest.Digest
	busy chan struct{} // capacity 1: the hash being computed
}

// version serves key when it is a consistent name of a file whose bytes
// hash to the digest in the name; ok is false otherwise.
func (o *Origin) version(ctx context.Context, key string) (*object.Object, bool) {
	p, d, ok := catalog.SplitConsistent(key)
	if !ok {
		return nil, false
	}
	obj, err := o.open(p)
	if err != nil {
		return nil, false
	}
	got, err := o.hashOf(ctx, obj)
	if err != nil || got != d {
		obj.Close()
		return nil, false
	}
	obj.Key, obj.ETag = key, d.ETag()
	return obj, true
}

// hashOf returns the sha256 of the file obj opened, from memory when that
// version was hashed before.
func (o *Origin) hashOf(ctx context.Context, obj *object.Object) (digest.Digest, error) {
	fb, ok := obj.Body.(*object.FileBody)
	if !ok || fb.File == nil {
		return digest.Digest{}, fmt.Errorf("origin: %s is not a file", obj.Key)
	}
	v := fileVersion{path: obj.Key, mtime: obj.LastModified, size: obj.Size}
	o.hashes.mu.Lock()
	d, ok := o.hashes.m[v]
	o.hashes.mu.Unlock()
	if ok {
		return d, nil
	}
	select {
	case o.hashes.busy <- struct{}{}:
		defer func() { <-o.hashes.busy }()
	case <-ctx.Done():
		return digest.Digest{}, ctx.Err()
	}
	h := digest.NewHash()
	if _, err := io.Copy(h, io.NewSectionReader(fb.File, 0, obj.Size)); err != nil {
		return digest.Digest{}, fmt.Errorf("origin: hash %s: %w", obj.Key, err)
	}
	d = digest.FromHash(h)
	o.hashes.mu.Lock()
	if o.hashes.m == nil || len(o.hashes.m) >= maxVersionHashes {
		o.hashes.m = map[fileVersion]digest.Digest{} // start over: cheap, and bounded
	}
	o.hashes.m[v] = d
	o.hashes.mu.Unlock()
	return d, nil
}
