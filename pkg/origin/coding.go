package origin

// Encoded answers from the origin (issue 16): the first WAN link, origin →
// top group, carries zstd, and dcz deltas against an earlier version of a
// file that the origin still holds. The origin's ETag is its files'
// modification time and size, not their sha256, so the encoder learns a
// file's digest itself, the first time a request that accepts an encoded
// answer asks for that version of it: it copies the file into a blob store
// of its own (hashing it on the way), under the key path#ETag. Encoded
// forms are then made and cached by contentcoding.Cache from those blobs,
// exactly as on a relay. The store keeps earlier versions (their keys
// differ) until its budget evicts them: they are the dictionaries of dcz
// answers. A dictionary the store no longer holds is answered with zstd.

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"
	"golang.org/x/sync/singleflight"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/contentcoding"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/store"
)

// Encoder makes the encoded forms of the origin's files. It satisfies
// the content server's Encoder and, for objects whose ETag is not their
// digest, its digest-learning extension.
type Encoder struct {
	blobs  *store.Store
	cache  *contentcoding.Cache
	log    zerolog.Logger
	flight singleflight.Group
}

// OpenEncoder opens (creating) dir/origin-blobs, the copies of the files
// asked for encoded, and dir/encoded, their encoded forms; each is held
// under maxBytes.
func OpenEncoder(dir string, maxBytes int64, log zerolog.Logger, clk clock.Clock) (*Encoder, error) {
	scfg := store.DefaultConfig(filepath.Join(dir, "origin-blobs"))
	scfg.MaxBytes = maxBytes
	st, err := store.Open(scfg, log, clk)
	if err != nil {
		return nil, fmt.Errorf("origin: encoding: %w", err)
	}
	ccfg := contentcoding.DefaultConfig(filepath.Join(dir, "encoded"))
	ccfg.MaxBytes = maxBytes
	c, err := contentcoding.Open(ccfg, st, log)
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("origin: encoding: %w", err)
	}
	return &Encoder{blobs: st, cache: c, log: log}, nil
}

// Close closes the blob store.
func (e *Encoder) Close() error { return e.blobs.Close() }

// Get returns the best form of blob d that a allows (nil: identity); a
// dcz delta only against a dictionary the origin still holds.
func (e *Encoder) Get(d digest.Digest, a contentcoding.Accept) (*contentcoding.Form, error) {
	if a.Dcz && !e.blobs.Has(a.Dict) {
		a.Dcz, a.Dict = false, digest.Digest{}
	}
	return e.cache.Get(d, a)
}

// Digest returns the sha256 of obj, a file Origin.Get opened: from the
// blob store when that version (path and ETag) was copied before, else by
// copying it there now (one copy for concurrent requests). false: obj is
// sent as it is (metadata, a file too small to gain, a copy that failed).
func (e *Encoder) Digest(obj *object.Object) (digest.Digest, bool) {
	fb, ok := obj.Body.(*object.FileBody)
	if !ok || fb.File == nil || obj.Size < contentcoding.MinEncodeSize || strings.HasPrefix(obj.Key, "-/") {
		return digest.Digest{}, false
	}
	key := obj.Key + "#" + obj.ETag
	if ent, err := e.blobs.Get(key); err == nil && e.blobs.Has(ent.Digest) {
		return ent.Digest, true
	}
	v, err, _ := e.flight.Do(key, func() (any, error) {
		w, err := e.blobs.Create(obj.Size)
		if err != nil {
			return nil, err
		}
		if _, err := io.Copy(w, io.NewSectionReader(fb.File, 0, obj.Size)); err != nil {
			w.Abort()
			return nil, err
		}
		ent, err := w.Commit(key, store.Entry{}, digest.Digest{})
		if err != nil {
			return nil, err
		}
		return ent.Digest, nil
	})
	if err != nil {
		e.log.Warn().Err(err).Str("key", obj.Key).Msg("copying a file for its encoded forms failed; sending it as it is")
		return digest.Digest{}, false
	}
	return v.(digest.Digest), true
}
