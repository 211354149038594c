package mirror

// Encoded syncs (issue 16): an object fetched from the upstream may travel
// as zstd, or as a dcz delta against the version of its path in the live
// generation while this relay stores it; pkg/hierarchy decodes and checks
// the answer against the signed digest.

import (
	"context"
	"errors"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/contentcoding"
	"github.com/relayd/relayd/pkg/digest"
)

// withTarget returns ctx carrying what a sync expects of o.
func (m *Mirror) withTarget(ctx context.Context, o catalog.Object) context.Context {
	if o.Size <= 0 {
		return ctx
	}
	t := contentcoding.Target{Length: o.Size, Digest: o.Digest}
	if old, _, ok := m.Expect(o.Path); ok && old.Digest != o.Digest && old.Size <= contentcoding.DefaultMaxDictionary && m.store.Has(old.Digest) {
		t.Dict = old.Digest
		t.LoadDict = func() ([]byte, error) {
			return contentcoding.ReadBlob(m.store, old.Digest, contentcoding.DefaultMaxDictionary)
		}
	}
	return contentcoding.WithTarget(ctx, t)
}

// refusedCoding reports whether err is an encoded answer refused (corrupt,
// or not the signed bytes): its partial file is discarded, and the next
// fetch of the object, which the upstream client makes a full transfer,
// follows at once.
func refusedCoding(err error) bool { return errors.Is(err, contentcoding.ErrRefused) }

// Change is a path whose object a new generation replaced.
type Change struct{ Old, New catalog.Object }

// changes lists the objects of want whose path prev lists with another
// digest.
func changes(prev *Live, want map[digest.Digest]catalog.Object) []Change {
	if prev == nil {
		return nil
	}
	var out []Change
	for _, o := range want {
		if old, ok := prev.Catalog.Lookup(o.Path); ok && old.Digest != o.Digest {
			out = append(out, Change{Old: old, New: o})
		}
	}
	return out
}
