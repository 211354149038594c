package admin

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/httpx"
)

// cache is a Cache that records what it was asked and answers fixed
// documents.
type cache struct {
	mu      sync.Mutex
	deleted []string
	pin     PinRequest
	fetch   PrefetchRequest
	list    []any
}

func (c *cache) ListCache(prefix, after string, limit int, pinnedOnly bool) (CacheList, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = []any{prefix, after, limit, pinnedOnly}
	return CacheList{Objects: []CachedObject{{Path: "a/b c.deb", Size: 3, Pinned: true}}, Next: "a/b c.deb"}, nil
}

func (c *cache) CacheStats() (CacheStats, error) { return CacheStats{Objects: 2, HitRatio: 0.5}, nil }

func (c *cache) DeleteCached(path string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if path == "gone" {
		return &httpx.Error{Status: http.StatusNotFound, Code: "not_found", Msg: "gone is not cached"}
	}
	c.deleted = append(c.deleted, path)
	return nil
}

func (c *cache) Pin(paths []string, unpin bool) (PinResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pin = PinRequest{Paths: paths, Unpin: unpin}
	return PinResult{Pinned: paths}, nil
}

func (c *cache) Prefetch(paths, include []string) (PrefetchStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fetch = PrefetchRequest{Paths: paths, Include: include}
	return PrefetchStatus{Running: true, Queued: len(paths)}, nil
}

func (c *cache) PrefetchProgress() PrefetchStatus { return PrefetchStatus{Done: 4} }

// Every Client method against the real admin handler: the typed answer
// is what the node gave, requests carry what the caller gave, and error
// answers come back as *APIError with their status and code.
func TestClient(t *testing.T) {
	t.Parallel()
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	status := Status{Node: "r1", Group: "hq", Generation: 9, Sync: &SyncProgress{State: SyncSyncing, Started: started},
		Budget: &BudgetStatus{MaxConns: 10}, Conflicts: []Conflict{{Kind: "gossip", Name: "r2", Addrs: []string{"a", "b"}, First: started}}}
	tree := GroupView{Group: "hq", Members: []MemberView{{Node: "r1", Cache: &ReportedCache{Hits: 3}}},
		Children: []GroupView{{Group: "branch", Members: []MemberView{{Node: "b1", Age: "3s"}}}}}
	agents := Agents{Agents: 1, Connected: []Stream{{ID: "ag", Since: started}}}
	sy, c := &syncer{}, &cache{}
	srv := httptest.NewServer(New(Config{
		Status: func() Status { return status }, Registry: prometheus.NewRegistry(), Token: "0123456789abcdef", Sync: sy,
		Members: func() (Members, error) {
			return Members{Group: "hq", Members: []Member{{Name: "r1", Meta: MemberMeta{Ready: true}}}}, nil
		},
		Tree: func() GroupView { return tree }, Agents: func() Agents { return agents }, Cache: c,
	}, zerolog.Nop()))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	cl := NewClient(srv.Listener.Addr().String(), "0123456789abcdef", srv.Client())

	same := func(name string, got, want any, err error) {
		t.Helper()
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, %v; want %+v", name, got, err, want)
		}
	}
	s, err := cl.Status(ctx)
	same("status", s, status, err)
	g, err := cl.Tree(ctx)
	same("tree", g, tree, err)
	a, err := cl.Agents(ctx)
	same("agents", a, agents, err)
	m, err := cl.Members(ctx)
	same("members", m.Members[0].Meta.Ready, true, err)
	p, err := cl.SyncProgress(ctx)
	same("sync progress", p, SyncProgress{State: SyncInSync, Generation: 3}, err)
	same("sync", sy.triggered, 1, cl.Sync(ctx))
	l, err := cl.CacheList(ctx, "a/", "a/a", 5, true)
	same("cache list", l.Next, "a/b c.deb", err)
	same("cache list query", c.list, []any{"a/", "a/a", 5, true}, nil)
	st, err := cl.CacheStats(ctx)
	same("cache stats", st, CacheStats{Objects: 2, HitRatio: 0.5}, err)
	same("delete", c.deleted, []string{"a/b c.deb"}, cl.DeleteCached(ctx, "/a/b c.deb"))
	pr, err := cl.Pin(ctx, []string{"x"}, true)
	same("pin", pr.Pinned, []string{"x"}, err)
	same("pin request", c.pin, PinRequest{Paths: []string{"x"}, Unpin: true}, nil)
	ps, err := cl.Prefetch(ctx, []string{"x", "y"}, []string{"security/**"})
	same("prefetch", ps, PrefetchStatus{Running: true, Queued: 2}, err)
	same("prefetch request", c.fetch, PrefetchRequest{Paths: []string{"x", "y"}, Include: []string{"security/**"}}, nil)
	ps, err = cl.PrefetchProgress(ctx)
	same("prefetch progress", ps, PrefetchStatus{Done: 4}, err)

	for _, tc := range []struct {
		name   string
		call   func() error
		status int
		code   string
	}{
		{"not cached", func() error { return cl.DeleteCached(ctx, "gone") }, http.StatusNotFound, "not_found"},
		{"no paths", func() error { _, err := cl.Pin(ctx, nil, false); return err }, http.StatusBadRequest, "no_paths"},
		{"no token", func() error { _, err := NewClient(srv.URL, "", nil).Status(ctx); return err }, http.StatusUnauthorized, "unauthorized"},
		{"no mirror", func() error {
			srv := httptest.NewServer(New(Config{Registry: prometheus.NewRegistry()}, zerolog.Nop()))
			defer srv.Close()
			return NewClient(srv.URL, "", nil).Sync(ctx)
		}, http.StatusNotFound, "no_mirror"},
	} {
		var api *APIError
		if err := tc.call(); !errors.As(err, &api) || api.Status != tc.status || api.Code != tc.code || api.Msg == "" {
			t.Errorf("%s: %v (%#v), want %d %s", tc.name, err, api, tc.status, tc.code)
		}
	}
}
