package proxycache

// What an operator does to the stored objects (the admin API's /v1/cache):
// list them, pin them against eviction, remove one. They work on any
// relay's store, a mirror's as well as a proxy's, so they are functions of
// the store and not methods of Cache.

import (
	"errors"
	"strings"
	"time"

	"github.com/relayd/relayd/pkg/admindoc"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/store"
)

// PinPrefix keys the blobs an operator pinned: PinPrefix + hex.
const PinPrefix = "-/pin/"

// Limits of List.
const (
	MaxListLimit     = 1000
	DefaultListLimit = 100
)

// PinStore is the store as listing and pinning use it. store.Store
// implements it.
type PinStore interface {
	// Get returns the entry for key or store.ErrNotFound.
	Get(key string) (store.Entry, error)
	// Delete removes key.
	Delete(key string) error
	// List calls fn for each key with the prefix, in order, until it
	// returns false.
	List(prefix string, fn func(key string, e store.Entry) bool) error
	// PinBlobs keys the blobs under prefix + hex, so they are not evicted.
	PinBlobs(prefix string, ds []digest.Digest) error
}

var _ PinStore = (*store.Store)(nil)

// Listed is one stored object of a List.
type Listed struct {
	Path   string
	Size   int64
	Digest digest.Digest
	Stored time.Time
	Pinned bool
}

// List returns a page of the stored objects with the prefix, in path
// order, after the path after: at most limit (DefaultListLimit if 0,
// never over MaxListLimit), only pinned ones if pinnedOnly. next, when
// not empty, is the after of the next page. relayd's own keys (under
// "-/": the mirror's, the pins, the catalog) are not content and not
// listed.
func List(st PinStore, prefix, after string, limit int, pinnedOnly bool) (page []Listed, next string, err error) {
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	pins := Pinned(st)
	page = []Listed{}
	err = st.List(prefix, func(key string, e store.Entry) bool {
		if key <= after || strings.HasPrefix(key, "-/") {
			return true
		}
		if pinnedOnly && !pins[e.Digest] {
			return true
		}
		if len(page) == limit {
			next = page[limit-1].Path
			return false
		}
		page = append(page, Listed{Path: key, Size: e.Size, Digest: e.Digest, Stored: e.Stored, Pinned: pins[e.Digest]})
		return true
	})
	return page, next, err
}

// Pinned returns the digests of the pinned blobs.
func Pinned(st PinStore) map[digest.Digest]bool {
	pins := map[digest.Digest]bool{}
	_ = st.List(PinPrefix, func(_ string, e store.Entry) bool {
		pins[e.Digest] = true
		return true
	})
	return pins
}

// PinResult is what Pin did.
type PinResult = admindoc.PinResult

// Pin exempts the stored objects at keys from eviction, or lifts that
// (unpin). Keys not stored, or stored as an error response (a 404 the
// upstream sent), are listed as Missing.
func Pin(st PinStore, keys []string, unpin bool) (PinResult, error) {
	var res PinResult
	var ds []digest.Digest
	for _, key := range keys {
		e, err := st.Get(key)
		if errors.Is(err, store.ErrNotFound) || (err == nil && entryStatus(e.Header) >= 400) {
			res.Missing = append(res.Missing, key)
			continue
		}
		if err != nil {
			return PinResult{}, err
		}
		if unpin {
			if err := st.Delete(PinPrefix + e.Digest.Hex()); err != nil && !errors.Is(err, store.ErrNotFound) {
				return PinResult{}, err
			}
			res.Unpinned = append(res.Unpinned, key)
			continue
		}
		ds = append(ds, e.Digest)
		res.Pinned = append(res.Pinned, key)
	}
	if err := st.PinBlobs(PinPrefix, ds); err != nil {
		return PinResult{}, err
	}
	return res, nil
}

// Remove deletes the stored object at key and its pin; store.ErrNotFound
// if it is not stored.
func Remove(st PinStore, key string) error {
	e, err := st.Get(key)
	if err != nil {
		return err
	}
	if err := st.Delete(key); err != nil {
		return err
	}
	if err := st.Delete(PinPrefix + e.Digest.Hex()); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}
