package proxycache

// What the cache needs from the rest of the relay, declared where it is
// used: the Upstream it fills from, the Store it keeps objects in, and the
// Peers of its group that own keys.

import (
	"context"
	"net/http"

	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/store"
)

// Upstream fetches objects. hierarchy.Client implements it.
type Upstream interface {
	// Fetch GETs key with the extra request headers; the caller closes
	// the response body. Statuses >= 500 are returned as errors.
	Fetch(ctx context.Context, key string, hdr http.Header) (*http.Response, error)
}

// AnswerUpstream is an Upstream that can pass the upstream's own answer
// on: FetchAnswer is Fetch, except that when every upstream answered with
// a status >= 500 the last such response is returned (the caller closes
// its body) rather than an error. A plain key's 5xx then reaches the
// client as the origin sent it. hierarchy.Client implements it; an
// Upstream without it keeps 5xx an error (502).
type AnswerUpstream interface {
	FetchAnswer(ctx context.Context, key string, hdr http.Header) (*http.Response, error)
}

// Store keeps objects on disk. store.Store implements it.
type Store interface {
	// Get returns the entry for key or store.ErrNotFound.
	Get(key string) (store.Entry, error)
	// Update changes an entry's metadata in place.
	Update(key string, fn func(*store.Entry)) error
	// Delete removes key.
	Delete(key string) error
	// List calls fn for every key with the prefix, in key order, until fn
	// returns false (the variants stored beside a key).
	List(prefix string, fn func(key string, e store.Entry) bool) error
	// OpenBlob opens a blob for reading, protecting it from eviction.
	OpenBlob(d digest.Digest) (*store.Reader, error)
	// Create starts writing a new object of size bytes (-1 if unknown).
	Create(size int64) (*store.Writer, error)
}

// Peers is the relay group, as the cache sees it. A miss is routed to the
// key's owner so that only the owner fetches from upstream.
type Peers interface {
	// Owner returns the content base URL of the member that owns key;
	// ok is false when this relay owns it (or it is alone).
	Owner(key string) (base string, ok bool)
	// Fetch GETs key from the member at base, marked as a peer request
	// so that it is never forwarded again; the caller closes the body.
	Fetch(ctx context.Context, base, key string, hdr http.Header) (*http.Response, error)
}

type peerKey struct{}

// FromPeer marks ctx as serving a peer's request: a fill it starts goes
// upstream, never to another member.
func FromPeer(ctx context.Context) context.Context { return context.WithValue(ctx, peerKey{}, true) }

func isFromPeer(ctx context.Context) bool { v, _ := ctx.Value(peerKey{}).(bool); return v }
