// The cache as the admin API sees it (nodes with a store: proxies and
// mirrors): list, stats, delete, pin, and prefetch at background priority
// before a rollout.
package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/relayd/relayd/pkg/cleanpath"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/glob"
	"github.com/relayd/relayd/pkg/hierarchy"
	"github.com/relayd/relayd/pkg/server"
	"github.com/relayd/relayd/pkg/store"
)

// pinPrefix keys the blobs an operator pinned: pinPrefix + hex.
const pinPrefix = "-/pin/"

// Limits of the cache API.
const (
	maxListLimit     = 1000
	defaultListLimit = 100
	maxPrefetch      = 100000
	prefetchWorkers  = 4
)

// CachedObject is one entry of GET /v1/cache.
type CachedObject struct {
	Path   string        `json:"path"`
	Size   int64         `json:"size"`
	Digest digest.Digest `json:"digest"`
	Stored time.Time     `json:"stored"`
	Pinned bool          `json:"pinned"`
}

// CacheList is GET /v1/cache: a page of objects in path order; Next, when
// set, is the after= of the next page.
type CacheList struct {
	Objects []CachedObject `json:"objects"`
	Next    string         `json:"next,omitempty"`
}

// ListCache lists cached objects with the prefix, after the path after.
func (n *Node) ListCache(prefix, after string, limit int, pinnedOnly bool) (any, error) {
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	pins := n.pinned()
	out := CacheList{Objects: []CachedObject{}}
	err := n.store.List(prefix, func(key string, e store.Entry) bool {
		if key <= after || strings.HasPrefix(key, "-/") {
			return true // relayd's own keys (mirror, pins, catalog) are not content
		}
		if pinnedOnly && !pins[e.Digest] {
			return true
		}
		if len(out.Objects) == limit {
			out.Next = out.Objects[limit-1].Path
			return false
		}
		out.Objects = append(out.Objects, CachedObject{Path: key, Size: e.Size, Digest: e.Digest, Stored: e.Stored, Pinned: pins[e.Digest]})
		return true
	})
	return out, err
}

func (n *Node) pinned() map[digest.Digest]bool {
	pins := map[digest.Digest]bool{}
	_ = n.store.List(pinPrefix, func(_ string, e store.Entry) bool {
		pins[e.Digest] = true
		return true
	})
	return pins
}

// CacheStats is GET /v1/cache/stats.
type CacheStats struct {
	Objects  int   `json:"objects"` // blobs on disk
	Bytes    int64 `json:"bytes"`
	MaxBytes int64 `json:"max_bytes"`
	Hits     int64 `json:"hits"`
	Misses   int64 `json:"misses"`
	// HitRatio is hits ÷ (hits + misses), 0 before any request.
	HitRatio float64 `json:"hit_ratio"`
	// BytesServed went to clients; UpstreamBytes came over the WAN,
	// PeerBytes from the group. The WAN saving is 1 − upstream ÷ served.
	BytesServed   int64   `json:"bytes_served"`
	UpstreamBytes int64   `json:"upstream_bytes"`
	PeerBytes     int64   `json:"peer_bytes"`
	WANSaving     float64 `json:"wan_saving"`
	Evictions     int64   `json:"evictions"`
}

// CacheStats summarises the cache.
func (n *Node) CacheStats() (any, error) {
	st := n.store.Stats()
	s := CacheStats{Objects: st.Blobs, Bytes: st.Bytes, MaxBytes: st.MaxBytes, Evictions: st.Evictions, BytesServed: n.content.BytesServed()}
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
	return s, nil
}

// DeleteCached removes one cached object (and its pin).
func (n *Node) DeleteCached(path string) error {
	key, err := adminKey(path)
	if err != nil {
		return err
	}
	e, err := n.store.Get(key)
	if errors.Is(err, store.ErrNotFound) {
		if n.mirror != nil && n.mirror.Covers(key) {
			return &server.Error{Status: http.StatusConflict, Code: "mirrored",
				Msg: key + " belongs to the mirrored generation; it goes when a generation drops it"}
		}
		return &server.Error{Status: http.StatusNotFound, Code: "not_found", Msg: key + " is not cached"}
	}
	if err != nil {
		return err
	}
	if err := n.store.Delete(key); err != nil {
		return err
	}
	if err := n.store.Delete(pinPrefix + e.Digest.Hex()); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	n.log.Info().Str("path", key).Msg("deleted from the cache by the admin API")
	return nil
}

// PinResult is POST /v1/cache/pin's answer.
type PinResult struct {
	Pinned   []string `json:"pinned,omitempty"`
	Unpinned []string `json:"unpinned,omitempty"`
	// Missing are paths not cached (prefetch them first).
	Missing []string `json:"missing,omitempty"`
}

// Pin exempts cached objects from eviction, or lifts that.
func (n *Node) Pin(paths []string, unpin bool) (any, error) {
	var res PinResult
	var ds []digest.Digest
	for _, p := range paths {
		key, err := adminKey(p)
		if err != nil {
			return nil, err
		}
		e, err := n.store.Get(key)
		if errors.Is(err, store.ErrNotFound) {
			res.Missing = append(res.Missing, key)
			continue
		}
		if err != nil {
			return nil, err
		}
		if unpin {
			if err := n.store.Delete(pinPrefix + e.Digest.Hex()); err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			res.Unpinned = append(res.Unpinned, key)
			continue
		}
		ds = append(ds, e.Digest)
		res.Pinned = append(res.Pinned, key)
	}
	if err := n.store.PinBlobs(pinPrefix, ds); err != nil {
		return nil, err
	}
	return res, nil
}

// PrefetchStatus is GET /v1/cache/prefetch: the last prefetch job.
type PrefetchStatus struct {
	Running  bool      `json:"running"`
	Queued   int       `json:"queued"`
	Done     int       `json:"done"`
	Failed   int       `json:"failed"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	// Errors holds the first failures, "path: error".
	Errors []string `json:"errors,omitempty"`
}

type prefetcher struct {
	mu     sync.Mutex
	status PrefetchStatus
}

// Prefetch warms the cache with paths, and with the catalog's paths that
// match include, at background priority (agents' requests go first). It
// returns at once; GET /v1/cache/prefetch follows the job.
func (n *Node) Prefetch(paths, include []string) (any, error) {
	if n.cache == nil {
		return nil, &server.Error{Status: http.StatusNotFound, Code: "no_cache", Msg: "prefetch needs a proxy (a mirror holds everything already)"}
	}
	var keys []string
	for _, p := range paths {
		key, err := adminKey(p)
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	if len(include) > 0 {
		f, err := glob.New(include)
		if err != nil {
			return nil, &server.Error{Status: http.StatusBadRequest, Code: "bad_filter", Msg: "bad include pattern", Err: err}
		}
		if n.mirror == nil || n.mirror.Live() == nil {
			return nil, &server.Error{Status: http.StatusConflict, Code: "no_catalog", Msg: "include needs a verified catalog (--pubkey and a live generation)"}
		}
		for _, o := range n.mirror.Live().Objects {
			if f.Match(o.Path) {
				keys = append(keys, o.Path)
			}
		}
	}
	if len(keys) == 0 {
		return nil, &server.Error{Status: http.StatusBadRequest, Code: "nothing_to_prefetch", Msg: "give paths or include patterns"}
	}
	if len(keys) > maxPrefetch {
		return nil, &server.Error{Status: http.StatusRequestEntityTooLarge, Code: "too_many", Msg: fmt.Sprintf("at most %d paths per prefetch", maxPrefetch)}
	}
	p := &n.prefetch
	p.mu.Lock()
	if p.status.Running {
		p.mu.Unlock()
		return nil, &server.Error{Status: http.StatusConflict, Code: "busy", Msg: "a prefetch is running; follow it at GET /v1/cache/prefetch"}
	}
	p.status = PrefetchStatus{Running: true, Queued: len(keys), Started: n.clk.Now()}
	st := p.status
	p.mu.Unlock()
	go n.runPrefetch(keys)
	return st, nil
}

func (n *Node) runPrefetch(keys []string) {
	ctx := hierarchy.Background(n.runCtx())
	g := new(errgroup.Group)
	g.SetLimit(prefetchWorkers)
	for _, key := range keys {
		g.Go(func() error {
			err := n.warm(ctx, key)
			p := &n.prefetch
			p.mu.Lock()
			defer p.mu.Unlock()
			if err != nil {
				p.status.Failed++
				if len(p.status.Errors) < 20 {
					p.status.Errors = append(p.status.Errors, key+": "+err.Error())
				}
			} else {
				p.status.Done++
			}
			return nil
		})
	}
	_ = g.Wait()
	n.prefetch.mu.Lock()
	n.prefetch.status.Running, n.prefetch.status.Finished = false, n.clk.Now()
	s := n.prefetch.status
	n.prefetch.mu.Unlock()
	n.log.Info().Int("done", s.Done).Int("failed", s.Failed).Msg("prefetch finished")
}

// warm fetches key through the cache and reads it to the end, so the
// fill completes.
func (n *Node) warm(ctx context.Context, key string) error {
	obj, err := n.cache.Get(ctx, key)
	if err != nil {
		return err
	}
	defer obj.Close()
	_, err = obj.Body.CopyTo(ctx, io.Discard, 0, -1)
	return err
}

// PrefetchProgress is GET /v1/cache/prefetch.
func (n *Node) PrefetchProgress() any {
	n.prefetch.mu.Lock()
	defer n.prefetch.mu.Unlock()
	return n.prefetch.status
}

// adminKey checks a path given to the admin API.
func adminKey(p string) (string, error) {
	key, err := cleanpath.Key("/" + strings.TrimPrefix(p, "/"))
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(key, "-/") {
		return "", &server.Error{Status: http.StatusBadRequest, Code: "bad_path", Msg: "paths under /-/ are relayd's own"}
	}
	return key, nil
}
