// Package origin serves a content directory as objects: the update source
// at the top of the tree (`relayd serve --mode origin --root DIR`), with
// its TUF repository at -/tuf/ (tuf.go: announcing each new timestamp,
// and re-signing it with the online timestamp key before it expires).
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
	"strings"

	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/wire"
)

// ErrNotFound: no regular file at that key.
var ErrNotFound = errors.New("origin: not found")

// Origin serves the files below one directory.
type Origin struct {
	root     *os.Root
	sendfile bool
	escapes  error  // os.Root's error for a path leaving the root (see escapeError)
	hashes   hashes // file versions served by consistent name (version.go)
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
	return &Origin{root: r, sendfile: sendfile, escapes: escapeError(r), hashes: hashes{busy: make(chan struct{}, 1)}}, nil
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

// Metadata serves the published TUF metadata file name
// (TREE/-/tuf/<name>, a name wire.TUFName accepts), as `relayd publish`
// and the timestamp re-sign write it.
func (o *Origin) Metadata(ctx context.Context, name string) (*object.Object, error) {
	return o.Get(ctx, strings.TrimPrefix(wire.TUFPath(name), "/"))
}

// Get opens the file for key (a cleanpath key), or the file a consistent
// target name (dir/<sha256>.name) names while its bytes hash to it.
func (o *Origin) Get(ctx context.Context, key string) (*object.Object, error) {
	obj, err := o.open(key)
	if errors.Is(err, ErrNotFound) {
		if v, ok := o.version(ctx, key); ok {
			return v, nil
		}
	}
	return obj, err
}

// open opens the file for key.
func (o *Origin) open(key string) (*object.Object, error) {
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
