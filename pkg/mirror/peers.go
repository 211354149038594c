package mirror

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/wire"
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

// peerBlobKey is the peer endpoint's key for a blob (wire.BlobPath without
// its leading slash); wire.BlobPathHeader names the object's catalog path.
func peerBlobKey(d digest.Digest) string { return strings.TrimPrefix(wire.BlobPath(d.Hex()), "/") }

// obtain makes sure the blob of o is stored, downloading it if not:
// once at a time per digest, however many syncs and peers ask, and in one
// partial file (a second writer would corrupt it). The download runs on
// the mirror's lifetime, not the caller's: a peer that gives up must not
// fail this relay's sync, nor the sync's end a peer's request. The caller
// waits until the blob is stored or ctx ends.
//
// A download started by a sync goes through the group (see fromGroup); one
// started for a peer (Blob), which asks because this relay owns the
// object, goes upstream. Whoever asks while it runs shares it. fromPeer
// reports whether the bytes came from a peer.
func (m *Mirror) obtain(ctx context.Context, o catalog.Object, st *syncState, viaGroup bool) (fromPeer bool, err error) {
	if m.store.Has(o.Digest) {
		return false, nil
	}
	ch := m.flight.DoChan(o.Digest.Hex(), func() (any, error) {
		if !m.hold() {
			return false, errClosed
		}
		defer m.work.Done()
		if m.store.Has(o.Digest) { // stored while the caller looked
			return false, nil
		}
		if viaGroup && m.peers != nil {
			return m.fromGroup(m.ctx, o, st)
		}
		return false, m.fromUpstream(m.ctx, o, st)
	})
	select {
	case r := <-ch:
		fromPeer, _ := r.Val.(bool)
		return fromPeer, r.Err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// fromGroup downloads o from its owner in the group when that is another
// relay (or the next in rank when it fails); when this relay's turn
// comes, from a member that already stores it, else from the upstream.
// Every path verifies the digest before the object counts.
//
// Only members ranked above this relay are asked to fetch (the others
// only for what they store), so relays that agree on the membership never
// wait on each other in a circle.
func (m *Mirror) fromGroup(ctx context.Context, o catalog.Object, st *syncState) (fromPeer bool, err error) {
	fromPeerAt := func(base string, storedOnly bool) error {
		return m.download(ctx, o, st, &m.peerBytes, func(hdr http.Header) (*http.Response, error) {
			hdr.Set(wire.BlobPathHeader, o.Path)
			if storedOnly {
				hdr.Set(wire.StoredOnlyHeader, "1")
			}
			return m.peers.Fetch(ctx, base, peerBlobKey(o.Digest), hdr)
		})
	}
	// The owner fetches it once for the group; if it fails (it died
	// and the group has not noticed yet), the next in rank, which every
	// member computes alike, so the object still crosses the WAN once.
	for _, base := range m.peers.Owners(o.Path) {
		err := fromPeerAt(base, false)
		if err == nil {
			return true, nil
		}
		m.log.Warn().Err(err).Str("path", o.Path).Str("peer", base).Msg("peer could not provide the object; trying the next")
	}
	for _, base := range m.peers.Others() {
		if fromPeerAt(base, true) == nil {
			return true, nil
		}
	}
	return false, m.fromUpstream(ctx, o, st)
}

// fromUpstream downloads o from the upstream, from a parent that has the
// generation st works on live.
func (m *Mirror) fromUpstream(ctx context.Context, o catalog.Object, st *syncState) error {
	get := func(ctx context.Context) func(http.Header) (*http.Response, error) {
		return func(hdr http.Header) (*http.Response, error) {
			if st.generation > 0 {
				hdr.Set(wire.GenerationHeader, strconv.FormatUint(st.generation, 10))
			}
			return m.up.Fetch(ctx, o.Path, hdr)
		}
	}
	err := m.download(ctx, o, st, &m.upstreamBytes, get(m.withTarget(ctx, o)))
	if refusedCoding(err) {
		m.log.Warn().Err(err).Str("path", o.Path).Msg("encoded answer refused; fetching the whole object")
		err = m.download(ctx, o, st, &m.upstreamBytes, get(ctx))
	}
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
		o, gen, ok := m.listed(d, path)
		if !ok {
			// A peer syncing a generation this relay has not seen yet:
			// update the metadata now (once for all asking, and to the
			// end even if this peer gives up).
			ch := m.flight.DoChan("catalog", func() (any, error) { return m.update(m.ctx) })
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if o, gen, ok = m.listed(d, path); !ok {
				return nil, fmt.Errorf("%w: %s is not listed with %s", ErrNotFound, path, d)
			}
		}
		if _, err := m.obtain(ctx, o, &syncState{generation: gen}, false); err != nil {
			return nil, err
		}
	}
	return m.blobObject(peerBlobKey(d), d, time.Time{})
}

// listed finds path with digest d in the newest verified catalog, and
// gives its generation.
func (m *Mirror) listed(d digest.Digest, path string) (catalog.Object, uint64, bool) {
	st := m.tuf.Current()
	if st == nil || st.Catalog == nil {
		return catalog.Object{}, 0, false
	}
	o, ok := st.Catalog.Lookup(path)
	return o, st.Catalog.Generation, ok && o.Digest == d
}
