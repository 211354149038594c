package mirror

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/object"
)

// Peers is the relay group as the mirror sees it: mirrors of one group
// split a generation by owner (the same rendezvous hashing as the proxy
// cache), so that each object crosses the WAN once per group.
type Peers interface {
	// Owners returns the content base URLs of the members that fetch key
	// from upstream, the owner first, then whom it falls to when the owner
	// fails, up to this relay (not included); empty when this relay owns
	// it (or it is alone).
	Owners(key string) []string
	// Others returns the content base URLs of the other mirrors of the
	// group, in random order. A relay that owns an object first asks them
	// whether one already stores it (a relay that joined late, or synced
	// alone before the others came), and only then the upstream.
	Others() []string
	// Fetch GETs key from the member at base, marked as a peer request.
	Fetch(ctx context.Context, base, key string, hdr http.Header) (*http.Response, error)
}

// SetPeers makes syncs fetch each object from its owner in the group
// (call before Run).
func (m *Mirror) SetPeers(p Peers) { m.peers = p }

// BlobPathHeader names the catalog path of a /-/blob request; with
// StoredOnlyHeader set the peer answers 404 rather than fetch the blob.
const (
	BlobPathHeader   = "X-Relay-Blob-Path"
	StoredOnlyHeader = "X-Relay-Blob-Stored-Only"
)

// BlobPath is the peer endpoint's key for a blob: /-/blob/<hex>?path=….
func BlobPath(d digest.Digest) string { return "-/blob/" + d.Hex() }

// fetchObject downloads o: from its owner in the group when that is
// another relay (or the next in rank when it fails); when this relay's
// turn comes, from a member that already stores it, else from the
// upstream. Every path verifies the digest
// before the object counts.
func (m *Mirror) fetchObject(ctx context.Context, o catalog.Object, st *syncState) error {
	if m.peers == nil {
		return m.ensure(ctx, o, st)
	}
	fromPeer := func(base string, storedOnly bool) error {
		return m.download(ctx, o, st, func(hdr http.Header) (*http.Response, error) {
			hdr.Set(BlobPathHeader, o.Path)
			if storedOnly {
				hdr.Set(StoredOnlyHeader, "1")
			}
			return m.peers.Fetch(ctx, base, BlobPath(o.Digest), hdr)
		})
	}
	// The owner fetches it once for the group; if it fails (it died
	// and the group has not noticed yet), the next in rank, which every
	// member computes alike, so the object still crosses the WAN once.
	for _, base := range m.peers.Owners(o.Path) {
		err := fromPeer(base, false)
		if err == nil {
			st.fromPeers.Add(1)
			return nil
		}
		m.log.Warn().Err(err).Str("path", o.Path).Str("peer", base).Msg("peer could not provide the object; trying the next")
	}
	for _, base := range m.peers.Others() {
		if fromPeer(base, true) == nil {
			st.fromPeers.Add(1)
			return nil
		}
	}
	return m.ensure(ctx, o, st)
}

// ensure downloads o from the upstream once, however many syncs and peers
// ask for it at the same time.
func (m *Mirror) ensure(ctx context.Context, o catalog.Object, st *syncState) error {
	if m.store.Has(o.Digest) {
		return nil
	}
	_, err, _ := m.flight.Do(o.Digest.Hex(), func() (any, error) {
		if m.store.Has(o.Digest) {
			return nil, nil
		}
		return nil, m.download(ctx, o, st, func(hdr http.Header) (*http.Response, error) {
			if st.generation > 0 {
				// Only from a parent that has this generation live.
				hdr.Set(catalog.GenerationHeader, strconv.FormatUint(st.generation, 10))
			}
			return m.up.Fetch(ctx, o.Path, hdr)
		})
	})
	return err
}

// Blob serves the blob d to a group peer that is syncing: from disk, or,
// unless storedOnly, when the newest verified catalog lists it at path,
// after fetching it from the upstream (once for the whole group).
func (m *Mirror) Blob(ctx context.Context, d digest.Digest, path string, storedOnly bool) (*object.Object, error) {
	if !m.store.Has(d) {
		if storedOnly {
			return nil, fmt.Errorf("%w: %s is not stored here", ErrNotFound, d)
		}
		o, ok := m.listed(d, path)
		if !ok {
			// A peer syncing a generation this relay has not seen yet:
			// look at the upstream catalog now (once for all asking).
			_, _, _ = m.flight.Do("catalog", func() (any, error) { return m.fetchCatalog(ctx) })
			if o, ok = m.listed(d, path); !ok {
				return nil, fmt.Errorf("%w: %s is not listed with %s", ErrNotFound, path, d)
			}
		}
		m.mu.RLock()
		gen := m.upstream.Generation
		m.mu.RUnlock()
		if err := m.ensure(ctx, o, &syncState{generation: gen}); err != nil {
			return nil, err
		}
	}
	return m.blobObject(BlobPath(d), d, time.Time{})
}

// listed finds path with digest d in the newest verified catalog.
func (m *Mirror) listed(d digest.Digest, path string) (catalog.Object, bool) {
	m.mu.RLock()
	c := m.upstream
	m.mu.RUnlock()
	if c == nil {
		return catalog.Object{}, false
	}
	o, ok := c.Lookup(path)
	return o, ok && o.Digest == d
}
