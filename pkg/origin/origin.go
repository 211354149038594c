// Package origin serves a content directory as objects: the update source
// at the top of the tree (`relayd serve --mode origin --root DIR`).
//
// Files are opened through os.Root, so no key, symlink or race can reach a
// file outside the directory. It serves files only: no listings, no
// writes. Any static HTTP server holding the same directory can stand in
// for it.
package origin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/object"
)

// ErrNotFound: no regular file at that key.
var ErrNotFound = errors.New("origin: not found")

// Origin serves the files below one directory.
type Origin struct {
	root     *os.Root
	sendfile bool
	escapes  error // os.Root's error for a path leaving the root (see escapeError)
}

// New opens dir. sendfile selects how file bytes are copied (see
// object.FileBody).
func New(dir string, sendfile bool) (*Origin, error) {
	if dir == "" {
		return nil, errors.New("origin: no root directory configured (--root)")
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("origin: open root: %w", err)
	}
	return &Origin{root: r, sendfile: sendfile, escapes: escapeError(r)}, nil
}

// escapeError returns the error os.Root gives for a path that leaves the
// root (through a symlink, say). os does not export it; an absolute path
// draws it before any file is touched.
func escapeError(r *os.Root) error {
	f, err := r.Open("/")
	if err == nil {
		f.Close()
		return nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return nil
}

// Close releases the directory.
func (o *Origin) Close() error { return o.root.Close() }

// Catalog serves the published catalog file (tree/-/catalog), as written
// by `relayd publish`.
func (o *Origin) Catalog(ctx context.Context) (*object.Object, error) {
	return o.Get(ctx, catalog.File)
}

// Get opens the file for key (a cleanpath key).
func (o *Origin) Get(_ context.Context, key string) (*object.Object, error) {
	f, err := o.root.Open(filepath.FromSlash(key))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || o.isEscape(err) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
		}
		return nil, fmt.Errorf("origin: open %s: %w", key, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("origin: stat %s: %w", key, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: %s is not a file", ErrNotFound, key)
	}
	h := http.Header{}
	ct := mime.TypeByExtension(path.Ext(key))
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	// Without a catalog the origin does not hash files per request: its
	// validator is modification time and size, like other static servers.
	etag := `"` + strconv.FormatInt(st.ModTime().UnixNano(), 16) + "-" + strconv.FormatInt(st.Size(), 16) + `"`
	return &object.Object{
		Key: key, Size: st.Size(), ETag: etag, LastModified: st.ModTime(), Header: h,
		Body: &object.FileBody{File: f, N: st.Size(), Sendfile: o.sendfile},
	}, nil
}

// isEscape reports os.Root's refusal of a path leaving the root (through a
// symlink); such a key simply does not exist here.
func (o *Origin) isEscape(err error) bool {
	return o.escapes != nil && errors.Is(err, o.escapes)
}

// Published describes the catalog file an origin serves.
type Published struct {
	Generation uint64
	Published  time.Time
	Digest     digest.Digest // of the file
}

// WatchCatalog looks at the catalog file every interval until ctx ends
// and calls fn when a new generation appears (and once at start when
// there is one), so the origin can push it down the tree the moment
// `relayd publish` has written it. A file that does not parse is logged
// and skipped: children verify what they fetch anyway.
func (o *Origin) WatchCatalog(ctx context.Context, interval time.Duration, log zerolog.Logger, fn func(Published)) {
	var last struct {
		size    int64
		modTime time.Time
		gen     uint64
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if st, err := o.root.Stat(filepath.FromSlash(catalog.File)); err == nil && (st.Size() != last.size || !st.ModTime().Equal(last.modTime)) {
			if b, err := o.root.ReadFile(filepath.FromSlash(catalog.File)); err == nil {
				last.size, last.modTime = st.Size(), st.ModTime()
				if g, p, err := catalog.Peek(b); err != nil {
					log.Warn().Err(err).Msg("catalog file does not parse; not announced")
				} else if g != last.gen {
					last.gen = g
					fn(Published{Generation: g, Published: p, Digest: digest.FromBytes(b)})
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
