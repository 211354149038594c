// The documents of the admin API (/v1/…): what the node serves and what
// Client decodes. Those a behaviour package produces (sync progress,
// cache and store counters, members, the tree, event streams, pins,
// prefetch) are
// declared once in pkg/admindoc, a leaf the behaviour package aliases,
// so a client imports no behaviour package and the node converts
// nothing; the documents only the node assembles are declared here.

package admin

import (
	"time"

	"github.com/relayd/relayd/pkg/admindoc"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/wire"
)

// Status is the /v1/status document.
type Status struct {
	Node    string `json:"node"`
	Group   string `json:"group"`
	Mode    string `json:"mode"`
	Version string `json:"version"`
	Uptime  string `json:"uptime"`
	// Upstream is the configured upstreams; Parents the parent relays in
	// use (learned from the upstream's /-/relays); Transfers what it took
	// to keep transfers going.
	Upstream  []string       `json:"upstream,omitempty"`
	Fallback  []string       `json:"fallback,omitempty"`
	Parents   []string       `json:"parents,omitempty"`
	Transfers *TransferStats `json:"transfers,omitempty"`
	// Window is the transfer window in force for background traffic and
	// what waits for it (with upstream-schedule or a rate cap); WAN the
	// bytes from upstream, on the wire and of content, per kind.
	Window *UpstreamWindow  `json:"window,omitempty"`
	WAN    *UpstreamTraffic `json:"wan,omitempty"`
	// Serving is how many object responses are in progress; Agents and
	// Children how many agents and child relays hold an event stream.
	Serving    int64  `json:"serving"`
	Agents     int    `json:"agents"`
	Children   int    `json:"children"`
	Generation uint64 `json:"generation"`
	// Metadata is how fresh the tree's TUF metadata this node serves is
	// (nil when it verifies none: a plain proxy).
	Metadata *MetadataStatus `json:"metadata,omitempty"`
	Store    *StoreStats     `json:"store,omitempty"`
	Cache    *CacheCounts    `json:"cache,omitempty"`
	Sync     *SyncProgress   `json:"sync,omitempty"`
	// Loops reports misconfigured cycles: requests refused here, and
	// upstream requests refused by a parent, with the last message.
	Loops *LoopStatus `json:"loops,omitempty"`
	// Budget is the connection budget and what it refused.
	Budget *BudgetStatus `json:"budget,omitempty"`
	// Conflicts lists identities two relays claim (see Conflict).
	Conflicts []Conflict `json:"conflicts,omitempty"`
	// Warnings are configuration risks found at start (gossip without a
	// key), also logged then.
	Warnings []string `json:"warnings,omitempty"`
}

// MetadataStatus is how fresh a node's TUF metadata is.
type MetadataStatus struct {
	// Verified is when the relay last verified it (zero for an origin,
	// which serves what it publishes); Expires is when it expires (the
	// earliest expiry of the trusted set; for an origin, its timestamp's).
	Verified time.Time `json:"verified,omitzero"`
	Expires  time.Time `json:"expires,omitzero"`
	// ExpiredSince is set once Expires has passed: the node keeps
	// serving the objects it holds, and nothing below it can get fresh
	// metadata through it.
	ExpiredSince string `json:"expired_since,omitempty"`
	// UpdateFailures counts failed metadata updates by reason (expired,
	// rollback, not_found, too_large, invalid, unavailable).
	UpdateFailures map[string]int64 `json:"update_failures,omitempty"`
}

// The documents behaviour packages produce are declared once, in
// admindoc, and named here too so that a client of this package needs
// no other import.
type (
	TransferStats   = admindoc.TransferStats
	StoreStats      = admindoc.StoreStats
	CacheCounts     = admindoc.CacheCounts
	SyncProgress    = admindoc.SyncProgress
	GroupView       = admindoc.GroupView
	MemberView      = admindoc.MemberView
	ReportedCache   = wire.CacheStats
	Stream          = admindoc.Stream
	PinResult       = admindoc.PinResult
	PrefetchStatus  = admindoc.PrefetchStatus
	UpstreamWindow  = admindoc.UpstreamWindow
	ClassWaiting    = admindoc.ClassWaiting
	UpstreamTraffic = admindoc.UpstreamTraffic
	KindTraffic     = admindoc.KindTraffic
	Member          = admindoc.Member
	MemberMeta      = admindoc.MemberMeta
)

// The states of SyncProgress.State.
const (
	SyncIdle    = admindoc.SyncIdle
	SyncSyncing = admindoc.SyncSyncing
	SyncInSync  = admindoc.SyncInSync
	SyncFailed  = admindoc.SyncFailed
)

// Health of a relay in /v1/tree (MemberView.Health).
const (
	HealthOK       = admindoc.HealthOK
	HealthNotReady = admindoc.HealthNotReady
	HealthStale    = admindoc.HealthStale
	HealthGone     = admindoc.HealthGone
)

// LoopStatus counts loop-guard refusals: Refused those of requests that
// proved to come from a relay of the tree (signed reports), an alert;
// Claimed those of requests that only claim to (object requests and
// streams, which anyone can send with this group in X-Relay-Path).
type LoopStatus struct {
	Refused         int64  `json:"refused"`
	LastRefused     string `json:"last_refused,omitempty"`
	Claimed         int64  `json:"claimed"`
	LastClaimed     string `json:"last_claimed,omitempty"`
	RefusedUpstream int64  `json:"refused_upstream"`
	LastUpstream    string `json:"last_upstream,omitempty"`
}

// BudgetStatus is the connection budget in /v1/status: the caps and what
// they hold and refused.
type BudgetStatus struct {
	// NoFile is the process's descriptor limit (soft RLIMIT_NOFILE).
	NoFile uint64 `json:"nofile"`
	// MaxConns caps the content port's connections; Conns are open;
	// ConnsRefused were accepted and closed at once beyond the cap or
	// beyond ConnsPerAddr (one address's connections besides its streams;
	// 0: no cap).
	MaxConns     int   `json:"max_conns"`
	Conns        int64 `json:"conns"`
	ConnsRefused int64 `json:"conns_refused"`
	ConnsPerAddr int   `json:"conns_per_addr"`
	// EventsMax and EventsPerAddr cap the event streams (0: no
	// per-address cap); StreamsRefused were answered 503; StreamsReplaced
	// were replaced by a newer stream of their identity; StreamsStuck were
	// dropped because their client took nothing.
	EventsMax       int   `json:"events_max"`
	EventsPerAddr   int   `json:"events_per_addr"`
	StreamsRefused  int64 `json:"streams_refused"`
	StreamsReplaced int64 `json:"streams_replaced"`
	StreamsStuck    int64 `json:"streams_stuck"`
}

// Conflict is an identity two relays claim: "gossip", a node name of this
// group at two gossip addresses; "stream", a child relay's group and node
// name held by two event streams.
type Conflict struct {
	Kind  string    `json:"kind"`
	Name  string    `json:"name"`
	Addrs []string  `json:"addrs"`
	Count int64     `json:"count"`
	First time.Time `json:"first_seen"`
	Last  time.Time `json:"last_seen"`
}

// Members is the /v1/members document: the group as this node sees it.
type Members struct {
	Group   string   `json:"group"`
	Self    string   `json:"self"`
	Members []Member `json:"members"`
}

// Agents is /v1/agents.
type Agents struct {
	// Agents and Relays count the agents and child relays holding an
	// event stream open to this relay.
	Agents int `json:"agents"`
	Relays int `json:"relays"`
	// Generation is the newest generation this relay serves; AtNewest
	// and Behind split the agents by the generation they reported when
	// they (re)connected. Agents that reported none count as behind.
	Generation uint64 `json:"generation"`
	AtNewest   int    `json:"at_newest"`
	Behind     int    `json:"behind"`
	// Connected lists every stream, oldest first.
	Connected []Stream `json:"connected"`
}

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
	// Upstream is every byte from upstream (the cache's fills, the
	// mirror's syncs and metadata) on the wire and as content, per kind;
	// Upstream.WireRatio (wire ÷ content) is what encodings saved.
	Upstream *UpstreamTraffic `json:"upstream,omitempty"`
}

// PinRequest is POST /v1/cache/pin's body.
type PinRequest struct {
	Paths []string `json:"paths"`
	Unpin bool     `json:"unpin"`
}

// PrefetchRequest is POST /v1/cache/prefetch's body.
type PrefetchRequest struct {
	Paths   []string `json:"paths"`
	Include []string `json:"include"`
}

// Accepted is the answer of POST /v1/sync.
type Accepted struct {
	Status string `json:"status"`
}
