// The cache as the admin API sees it (nodes with a store: proxies and
// mirrors): list, stats, delete, pin, and prefetch at background priority
// before a rollout. What they do is in pkg/proxycache (pins.go,
// prefetch.go); this file turns admin requests into its calls and its
// answers and errors into the admin documents.
package node

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/relayd/relayd/pkg/admin"
	"github.com/relayd/relayd/pkg/cleanpath"
	"github.com/relayd/relayd/pkg/glob"
	"github.com/relayd/relayd/pkg/hierarchy"
	"github.com/relayd/relayd/pkg/httpx"
	"github.com/relayd/relayd/pkg/mirror"
	"github.com/relayd/relayd/pkg/proxycache"
	"github.com/relayd/relayd/pkg/server"
	"github.com/relayd/relayd/pkg/store"
)

// adminCache is the cache endpoints' view of the node; nil for an origin.
func (n *Node) adminCache() admin.Cache {
	if n.store == nil {
		return nil
	}
	return cacheAdmin{n}
}

// cacheAdmin implements admin.Cache for a node with a store.
type cacheAdmin struct{ n *Node }

var _ admin.Cache = cacheAdmin{}

// ListCache lists cached objects with the prefix, after the path after.
func (c cacheAdmin) ListCache(prefix, after string, limit int, pinnedOnly bool) (admin.CacheList, error) {
	page, next, err := proxycache.List(c.n.store, prefix, after, limit, pinnedOnly)
	if err != nil {
		return admin.CacheList{}, server.AsError(err)
	}
	doc := admin.CacheList{Objects: make([]admin.CachedObject, 0, len(page)), Next: next}
	for _, o := range page {
		doc.Objects = append(doc.Objects, admin.CachedObject(o))
	}
	return doc, nil
}

// CacheStats summarises the cache.
func (c cacheAdmin) CacheStats() (admin.CacheStats, error) {
	n := c.n
	st := n.store.Stats()
	s := admin.CacheStats{Objects: st.Blobs, Bytes: st.Bytes, MaxBytes: st.MaxBytes, Evictions: st.Evictions, BytesServed: n.content.BytesServed()}
	if n.cache != nil {
		cs := n.cache.Stats()
		s.Hits, s.Misses, s.UpstreamBytes, s.PeerBytes = cs.Hits, cs.Misses, cs.UpstreamBytes, cs.PeerBytes
	}
	if t := s.Hits + s.Misses; t > 0 {
		s.HitRatio = float64(s.Hits) / float64(t)
	}
	if s.BytesServed > 0 {
		s.WANSaving = max(0, 1-float64(s.UpstreamBytes)/float64(s.BytesServed))
	}
	if n.up != nil {
		tr := n.up.Traffic()
		s.Upstream = &tr
	}
	return s, nil
}

// DeleteCached removes one cached object (and its pin).
func (c cacheAdmin) DeleteCached(path string) error {
	key, err := adminKey(path)
	if err != nil {
		return err
	}
	err = proxycache.Remove(c.n.store, key)
	switch {
	case errors.Is(err, store.ErrNotFound) && c.n.mirror != nil && c.n.mirror.Covers(key):
		return &httpx.Error{Status: http.StatusConflict, Code: "mirrored",
			Msg: key + " belongs to the mirrored generation; it goes when a generation drops it"}
	case errors.Is(err, store.ErrNotFound):
		return &httpx.Error{Status: http.StatusNotFound, Code: "not_found", Msg: key + " is not cached"}
	case err != nil:
		return server.AsError(err)
	}
	c.n.log.Info().Str("path", key).Msg("deleted from the cache by the admin API")
	return nil
}

// Pin exempts cached objects from eviction, or lifts that.
func (c cacheAdmin) Pin(paths []string, unpin bool) (admin.PinResult, error) {
	keys, err := adminKeys(paths)
	if err != nil {
		return admin.PinResult{}, err
	}
	res, err := proxycache.Pin(c.n.store, keys, unpin)
	return res, server.AsError(err)
}

// Prefetch warms the cache with paths, and with the catalog's paths that
// match include, at background priority (agents' requests go first). It
// returns at once; GET /v1/cache/prefetch follows the job.
func (c cacheAdmin) Prefetch(paths, include []string) (admin.PrefetchStatus, error) {
	n := c.n
	if n.prefetch == nil {
		return admin.PrefetchStatus{}, &httpx.Error{Status: http.StatusNotFound, Code: "no_cache", Msg: "prefetch needs a proxy (a mirror holds everything already)"}
	}
	keys, err := adminKeys(paths)
	if err != nil {
		return admin.PrefetchStatus{}, err
	}
	if len(include) > 0 {
		more, err := n.catalogKeys(include)
		if err != nil {
			return admin.PrefetchStatus{}, err
		}
		keys = append(keys, more...)
	}
	st, err := n.prefetch.Start(hierarchy.Background(n.runCtx()), keys)
	switch {
	case errors.Is(err, proxycache.ErrNothingToPrefetch):
		return admin.PrefetchStatus{}, &httpx.Error{Status: http.StatusBadRequest, Code: "nothing_to_prefetch", Msg: "give paths or include patterns"}
	case errors.Is(err, proxycache.ErrTooManyKeys):
		return admin.PrefetchStatus{}, &httpx.Error{Status: http.StatusRequestEntityTooLarge, Code: "too_many", Msg: fmt.Sprintf("at most %d paths per prefetch", proxycache.MaxPrefetch)}
	case errors.Is(err, proxycache.ErrPrefetchBusy):
		return admin.PrefetchStatus{}, &httpx.Error{Status: http.StatusConflict, Code: "busy", Msg: "a prefetch is running; follow it at GET /v1/cache/prefetch"}
	case err != nil:
		return admin.PrefetchStatus{}, server.AsError(err)
	}
	return st, nil
}

// PrefetchProgress is GET /v1/cache/prefetch.
func (c cacheAdmin) PrefetchProgress() admin.PrefetchStatus {
	if c.n.prefetch == nil {
		return admin.PrefetchStatus{}
	}
	return c.n.prefetch.Status()
}

// catalogKeys are the paths of the live catalog that match include.
func (n *Node) catalogKeys(include []string) ([]string, error) {
	f, err := glob.New(include)
	if err != nil {
		return nil, &httpx.Error{Status: http.StatusBadRequest, Code: "bad_filter", Msg: "bad include pattern", Err: err}
	}
	var live *mirror.Live
	if n.mirror != nil {
		live = n.mirror.Live()
	}
	if live == nil {
		return nil, &httpx.Error{Status: http.StatusConflict, Code: "no_catalog", Msg: "include needs verified metadata (--root and a live generation)"}
	}
	var keys []string
	for _, o := range live.Catalog.Objects {
		if f.Match(o.Path) {
			keys = append(keys, o.Path)
		}
	}
	return keys, nil
}

// adminKeys checks paths given to the admin API.
func adminKeys(paths []string) ([]string, error) {
	keys := make([]string, 0, len(paths))
	for _, p := range paths {
		key, err := adminKey(p)
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// adminKey checks a path given to the admin API.
func adminKey(p string) (string, error) {
	key, err := cleanpath.Key("/" + strings.TrimPrefix(p, "/"))
	if err != nil {
		return "", server.AsError(err)
	}
	if strings.HasPrefix(key, "-/") {
		return "", &httpx.Error{Status: http.StatusBadRequest, Code: "bad_path", Msg: "paths under /-/ are relayd's own"}
	}
	return key, nil
}
