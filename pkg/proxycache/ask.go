package proxycache

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/relayd/relayd/pkg/contentcoding"
	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/store"
)

// Who a fill asks (open): the key's owner in the group, or the upstream;
// with which request fields (request): the client's end-to-end ones, the
// stale entry's validators and the catalog generation.

// request asks for key, conditionally when stale is set, and times the
// wait for the answer's headers.
func (c *Cache) request(ctx context.Context, f *fill, x expectation, stale *store.Entry, route bool) (*http.Response, bool, error) {
	hdr := http.Header{}
	if !x.listed {
		hdr = (&request{h: f.req}).forward()
	}
	if stale != nil {
		for k, v := range validators(stale) {
			hdr[k] = v
		}
	}
	x.ask(hdr)
	if x.listed && x.size > 0 && stale == nil {
		ctx = contentcoding.WithTarget(ctx, c.target(f.key, x))
	}
	start := time.Now()
	resp, fromPeer, err := c.open(ctx, f.key, hdr, route, !x.listed && !reserved(f.key))
	f.upstreamTime = time.Since(start)
	if c.cfg.ObserveFill != nil {
		c.cfg.ObserveFill(f.upstreamTime)
	}
	if err == nil && fromPeer {
		f.result = object.Peer
	}
	return resp, fromPeer, err
}

// target is what a listed fill expects, so that it may travel encoded
// (pkg/hierarchy decodes and checks it): zstd, or a dcz delta against the
// blob the key held before, an earlier version, while it is stored.
func (c *Cache) target(key string, x expectation) contentcoding.Target {
	t := contentcoding.Target{Length: x.size, Digest: x.digest}
	if e, err := c.store.Get(key); err == nil && !e.Digest.IsZero() && e.Digest != x.digest && e.Size <= contentcoding.DefaultMaxDictionary {
		old := e.Digest
		t.Dict = old
		t.LoadDict = func() ([]byte, error) {
			return contentcoding.ReadBlob(c.store, old, contentcoding.DefaultMaxDictionary)
		}
	}
	return t
}

// open asks for key: the group member that owns it when route is set and
// the owner is another relay, else (or when the owner fails) the upstream;
// for a plain key, whose answer passes through, with its 5xx answers too.
func (c *Cache) open(ctx context.Context, key string, hdr http.Header, route, plain bool) (*http.Response, bool, error) {
	if route && c.peers != nil {
		if base, ok := c.peers.Owner(key); ok {
			resp, err := c.peers.Fetch(ctx, base, key, hdr)
			if err == nil && resp.StatusCode < 500 {
				c.peerFills.Add(1)
				return resp, true, nil
			}
			if err == nil {
				err = fmt.Errorf("status %d", resp.StatusCode)
				resp.Body.Close()
			}
			c.log.Warn().Err(err).Str("key", key).Str("owner", base).Msg("owner unreachable; fetching upstream")
		}
	}
	if au, ok := c.up.(AnswerUpstream); ok && plain {
		resp, err := au.FetchAnswer(ctx, key, hdr)
		return resp, false, err
	}
	resp, err := c.up.Fetch(ctx, key, hdr)
	return resp, false, err
}
