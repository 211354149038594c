// The snapshot document of /v1/events, made of the admin API's own answers.

package ui

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/relayd/relayd/pkg/admindoc"
)

// Snapshot is the data of one "snapshot" event. Each document is the
// admin endpoint's answer verbatim; one the node does not serve (an
// origin's cache, a relay without outcomes) is absent and Missing says
// with what code it was refused.
type Snapshot struct {
	Time       time.Time         `json:"time"`
	Status     json.RawMessage   `json:"status,omitempty"`     // GET /v1/status
	Tree       json.RawMessage   `json:"tree,omitempty"`       // GET /v1/tree
	Cache      json.RawMessage   `json:"cache,omitempty"`      // GET /v1/cache/stats
	Compliance json.RawMessage   `json:"compliance,omitempty"` // GET /v1/compliance
	Rollout    json.RawMessage   `json:"rollout,omitempty"`    // GET /v1/rollout
	Missing    map[string]string `json:"missing,omitempty"`
	Counters   Counters          `json:"counters"`
}

// Counters are the cumulative counts the page turns into its plots (the
// difference between two snapshots over their time apart).
type Counters struct {
	// Node is this node's cache since it started (absent on an origin):
	// the hit ratio is hits ÷ (hits + misses), the WAN bytes saved are
	// served − upstream.
	Node *NodeCounters `json:"node,omitempty"`
	// Tree sums what the relays of the tree last reported of their
	// caches (every report-interval).
	Tree TreeCounters `json:"tree"`
}

// NodeCounters is this node's cache (GET /v1/cache/stats).
type NodeCounters struct {
	Hits          int64 `json:"hits"`
	Misses        int64 `json:"misses"`
	BytesServed   int64 `json:"bytes_served"`
	UpstreamBytes int64 `json:"upstream_bytes"`
}

// TreeCounters sums the tree's reported caches.
type TreeCounters struct {
	Relays        int   `json:"relays"`
	Hits          int64 `json:"hits"`
	Misses        int64 `json:"misses"`
	UpstreamBytes int64 `json:"upstream_bytes"`
}

// part is one document of the snapshot.
type part struct {
	name string
	path string
	set  func(*Snapshot, json.RawMessage)
}

var parts = []part{
	{"status", "/v1/status", func(s *Snapshot, b json.RawMessage) { s.Status = b }},
	{"tree", "/v1/tree", func(s *Snapshot, b json.RawMessage) { s.Tree = b }},
	{"cache", "/v1/cache/stats", func(s *Snapshot, b json.RawMessage) { s.Cache = b }},
	{"compliance", "/v1/compliance", func(s *Snapshot, b json.RawMessage) { s.Compliance = b }},
	{"rollout", "/v1/rollout", func(s *Snapshot, b json.RawMessage) { s.Rollout = b }},
}

// maxPart bounds one document of a snapshot: /v1/tree of
// wire.MaxReportNodes relays fits.
const maxPart = 16 << 20

// snapshot asks the admin API for each document, as the stream's client
// would (same Authorization), and derives the counters.
func (e *Events) snapshot(ctx context.Context, auth string) *Snapshot {
	s := &Snapshot{Time: time.Now().UTC()}
	for _, p := range parts {
		b, code := e.get(ctx, auth, p.path)
		if code != "" {
			if s.Missing == nil {
				s.Missing = map[string]string{}
			}
			s.Missing[p.name] = code
			continue
		}
		p.set(s, b)
	}
	s.Counters = counters(s)
	return s
}

// get answers GET path through the admin API: its body, or the error
// code of a refusal.
func (e *Events) get(ctx context.Context, auth, path string) (json.RawMessage, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, "internal"
	}
	req.RemoteAddr = "127.0.0.1:0" // in-process: the dashboard's own request
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := &recorder{header: http.Header{}}
	e.cfg.API.ServeHTTP(rec, req)
	switch {
	case rec.tooBig:
		return nil, "too_large"
	case rec.status != http.StatusOK:
		var doc struct {
			Code string `json:"code"`
		}
		if json.Unmarshal(rec.body, &doc) != nil || doc.Code == "" {
			return nil, http.StatusText(rec.status)
		}
		return nil, doc.Code
	case !json.Valid(rec.body):
		return nil, "bad_json"
	}
	return rec.body, ""
}

var errPartTooLarge = errors.New("ui: document larger than 16 MiB")

// recorder keeps a response in memory, up to maxPart bytes.
type recorder struct {
	header http.Header
	status int
	body   []byte
	tooBig bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	if len(r.body)+len(p) > maxPart {
		r.tooBig = true
		return 0, errPartTooLarge
	}
	r.body = append(r.body, p...)
	return len(p), nil
}

// counters derives the plotted counts from the snapshot's documents.
func counters(s *Snapshot) Counters {
	var c Counters
	if s.Cache != nil {
		var n NodeCounters
		if json.Unmarshal(s.Cache, &n) == nil {
			c.Node = &n
		}
	}
	var tree admindoc.GroupView
	if s.Tree != nil && json.Unmarshal(s.Tree, &tree) == nil {
		sumTree(&tree, &c.Tree, 0)
	}
	return c
}

func sumTree(g *admindoc.GroupView, t *TreeCounters, depth int) {
	if depth > 64 {
		return
	}
	for _, m := range g.Members {
		t.Relays++
		if m.Cache != nil {
			t.Hits += m.Cache.Hits
			t.Misses += m.Cache.Misses
			t.UpstreamBytes += m.Cache.UpstreamBytes
		}
	}
	for i := range g.Children {
		sumTree(&g.Children[i], t, depth+1)
	}
}
