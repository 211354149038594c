package admin

// Client: the admin API from the other side, for `relayd status`,
// `relayd cache …` and scripts. One method per endpoint, typed answers,
// the JSON errors decoded into *APIError.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// maxAnswer bounds an answer read (a cache page of 1,000 objects is
// far less; a status document a few KiB).
const maxAnswer = 64 << 20

// Client talks to one node's admin API.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// NewClient returns a client of the admin API at base ("http://host:port";
// a bare "host:port" gets http://). token, if not empty, is sent as the
// bearer token; hc nil is http.DefaultClient.
func NewClient(base, token string, hc *http.Client) *Client {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(base, "/"), token: token, http: hc}
}

// Base is the admin API's base URL.
func (c *Client) Base() string { return c.base }

// APIError is an error answer of the admin API.
type APIError struct {
	Method, Path string
	// Status is the HTTP status; Code and Msg the JSON error's code and
	// message ("" if the body was not one).
	Status int
	Code   string
	Msg    string
}

func (e *APIError) Error() string {
	st := strconv.Itoa(e.Status) + " " + http.StatusText(e.Status)
	if e.Msg != "" {
		return fmt.Sprintf("%s %s: %s (%s)", e.Method, e.Path, e.Msg, st)
	}
	return fmt.Sprintf("%s %s: %s", e.Method, e.Path, st)
}

// Status is GET /v1/status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
}

// Members is GET /v1/members.
func (c *Client) Members(ctx context.Context) (Members, error) {
	var m Members
	return m, c.do(ctx, http.MethodGet, "/v1/members", nil, &m)
}

// Tree is GET /v1/tree.
func (c *Client) Tree(ctx context.Context) (GroupView, error) {
	var g GroupView
	return g, c.do(ctx, http.MethodGet, "/v1/tree", nil, &g)
}

// Agents is GET /v1/agents.
func (c *Client) Agents(ctx context.Context) (Agents, error) {
	var a Agents
	return a, c.do(ctx, http.MethodGet, "/v1/agents", nil, &a)
}

// SyncProgress is GET /v1/sync.
func (c *Client) SyncProgress(ctx context.Context) (SyncProgress, error) {
	var p SyncProgress
	return p, c.do(ctx, http.MethodGet, "/v1/sync", nil, &p)
}

// Sync is POST /v1/sync: start a sync now.
func (c *Client) Sync(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/sync", nil, nil)
}

// CacheList is GET /v1/cache: one page of cached objects with the prefix,
// after the path after (limit 0: the node's default).
func (c *Client) CacheList(ctx context.Context, prefix, after string, limit int, pinnedOnly bool) (CacheList, error) {
	q := url.Values{}
	for k, v := range map[string]string{"prefix": prefix, "after": after} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if pinnedOnly {
		q.Set("pinned", "true")
	}
	path := "/v1/cache"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var l CacheList
	return l, c.do(ctx, http.MethodGet, path, nil, &l)
}

// CacheStats is GET /v1/cache/stats.
func (c *Client) CacheStats(ctx context.Context) (CacheStats, error) {
	var s CacheStats
	return s, c.do(ctx, http.MethodGet, "/v1/cache/stats", nil, &s)
}

// DeleteCached is DELETE /v1/cache/{path}.
func (c *Client) DeleteCached(ctx context.Context, path string) error {
	return c.do(ctx, http.MethodDelete, "/v1/cache/"+escapePath(path), nil, nil)
}

// Pin is POST /v1/cache/pin.
func (c *Client) Pin(ctx context.Context, paths []string, unpin bool) (PinResult, error) {
	var r PinResult
	return r, c.do(ctx, http.MethodPost, "/v1/cache/pin", PinRequest{Paths: paths, Unpin: unpin}, &r)
}

// Prefetch is POST /v1/cache/prefetch.
func (c *Client) Prefetch(ctx context.Context, paths, include []string) (PrefetchStatus, error) {
	var s PrefetchStatus
	return s, c.do(ctx, http.MethodPost, "/v1/cache/prefetch", PrefetchRequest{Paths: paths, Include: include}, &s)
}

// PrefetchProgress is GET /v1/cache/prefetch.
func (c *Client) PrefetchProgress(ctx context.Context) (PrefetchStatus, error) {
	var s PrefetchStatus
	return s, c.do(ctx, http.MethodGet, "/v1/cache/prefetch", nil, &s)
}

// do sends a request with body as JSON (if not nil) and decodes a JSON
// answer into out (if not nil). An error status is an *APIError.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin API %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		e := &APIError{Method: method, Path: path, Status: resp.StatusCode}
		var doc struct{ Error, Code string }
		if json.Unmarshal(b, &doc) == nil {
			e.Msg, e.Code = doc.Error, doc.Code
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// escapePath escapes each segment of a content path for a URL.
func escapePath(p string) string {
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
