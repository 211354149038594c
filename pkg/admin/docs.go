// The documents of the admin API (/v1/…): what the node serves and what
// Client decodes. They are declared here, and not in the packages whose
// state they show, so that a client imports no behaviour package; the
// node converts its parts' values into them (pkg/node/status.go), and a
// field added on one side without the other fails that conversion at
// compile time.

package admin

import (
	"time"

	"github.com/relayd/relayd/pkg/digest"
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
	// Serving is how many object responses are in progress; Agents and
	// Children how many agents and child relays hold an event stream.
	Serving    int64         `json:"serving"`
	Agents     int           `json:"agents"`
	Children   int           `json:"children"`
	Generation uint64        `json:"generation"`
	Store      *StoreStats   `json:"store,omitempty"`
	Cache      *CacheCounts  `json:"cache,omitempty"`
	Sync       *SyncProgress `json:"sync,omitempty"`
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

// TransferStats counts what the upstream client did to keep transfers
// going (hierarchy.Stats).
type TransferStats struct {
	// Failovers: requests that moved on from a failed upstream.
	Failovers int64 `json:"failovers"`
	// Resumes: transfers that broke mid-body and went on, with Range,
	// from another upstream.
	Resumes int64 `json:"resumes"`
	// Fallbacks: requests sent to a fallback because every upstream
	// failed.
	Fallbacks int64 `json:"fallbacks"`
	// ResumesRefused: answers to a resume that were not the same
	// representation, so their bytes were not appended.
	ResumesRefused int64 `json:"resumes_refused"`
}

// StoreStats is the blob store's size (store.Stats).
type StoreStats struct {
	Blobs     int   `json:"blobs"`
	Bytes     int64 `json:"bytes"`
	Reserved  int64 `json:"reserved"`
	MaxBytes  int64 `json:"max_bytes"`
	Evictions int64 `json:"evictions"`
}

// CacheCounts counts what the proxy cache did since it started
// (proxycache.Stats).
type CacheCounts struct {
	Hits        int64 `json:"hits"`
	Misses      int64 `json:"misses"`
	Stale       int64 `json:"stale"`
	Revalidated int64 `json:"revalidated"`
	Coalesced   int64 `json:"coalesced"`
	PeerFills   int64 `json:"peer_fills"`
	// UpstreamBytes came from the upstream (the WAN); PeerBytes from other
	// relays of the group (the LAN).
	UpstreamBytes int64 `json:"upstream_bytes"`
	PeerBytes     int64 `json:"peer_bytes"`
	Fills         int64 `json:"fills"`
	FillErrors    int64 `json:"fill_errors"`
	// ResumesRefused: broken peer transfers whose resume from upstream was
	// not the same representation.
	ResumesRefused int64 `json:"resumes_refused"`
}

// The states of SyncProgress.State.
const (
	SyncIdle    = "idle"    // no sync has run yet
	SyncSyncing = "syncing" // downloading a new generation
	SyncInSync  = "in-sync" // the live generation is the upstream's
	SyncFailed  = "failed"  // the last sync failed; the live generation stays
)

// SyncProgress is GET /v1/sync: the mirror's current or last sync
// (mirror.Progress).
type SyncProgress struct {
	State            string    `json:"state"`
	Generation       uint64    `json:"generation"`
	Target           uint64    `json:"target,omitempty"`
	ObjectsDone      int64     `json:"objects_done"`
	ObjectsTotal     int64     `json:"objects_total"`
	BytesDone        int64     `json:"bytes_done"`
	BytesTotal       int64     `json:"bytes_total"`
	BytesFetched     int64     `json:"bytes_fetched"`
	ObjectsFromPeers int64     `json:"objects_from_peers"`
	RateBytesPerSec  float64   `json:"rate_bytes_per_sec"`
	ETASeconds       float64   `json:"eta_seconds"`
	Errors           int64     `json:"errors"`
	LastError        string    `json:"last_error,omitempty"`
	Started          time.Time `json:"started,omitzero"`
	Finished         time.Time `json:"finished,omitzero"`
	RejectedCatalogs int64     `json:"rejected_catalogs"`
	// ResumesRefused counts, since start, answers that could not continue
	// a partial file (another representation): they started over.
	ResumesRefused int64 `json:"resumes_refused"`
}

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

// Member is one relay of the group (group.Member).
type Member struct {
	Name       string     `json:"name"`
	Addr       string     `json:"gossip_addr"`
	State      string     `json:"state"` // alive or gone
	Meta       MemberMeta `json:"meta"`
	LastChange time.Time  `json:"last_change"`
	Self       bool       `json:"self,omitempty"`
}

// MemberMeta is what a relay tells its group about itself (group.Meta).
type MemberMeta struct {
	Group      string `json:"g"`
	Mode       string `json:"m"`
	URL        string `json:"u"`
	Generation uint64 `json:"n,omitempty"`
	Ready      bool   `json:"r,omitempty"`
}

// GroupView is one group in /v1/tree: its relays and the groups below it.
type GroupView struct {
	Group    string       `json:"group"`
	Members  []MemberView `json:"members"`
	Children []GroupView  `json:"children,omitempty"`
}

// MemberView is one relay in /v1/tree.
type MemberView struct {
	Node       string `json:"node"`
	Mode       string `json:"mode"`
	URL        string `json:"url,omitempty"`
	Generation uint64 `json:"generation"`
	// Lag is how many generations the relay is behind the one the relay
	// showing the tree serves; Ahead is set for a relay that claims a
	// newer one (lag 0).
	Lag     uint64         `json:"lag"`
	Ahead   bool           `json:"ahead,omitempty"`
	Ready   bool           `json:"ready"`
	Problem string         `json:"problem,omitempty"`
	Agents  int            `json:"agents"`
	Cache   *ReportedCache `json:"cache,omitempty"`
	// Age is how old the newest report of this relay is ("" for the
	// relay's own group, which it knows first hand).
	Age string `json:"age,omitempty"`
	// Health is HealthOK, HealthNotReady, HealthStale or HealthGone.
	Health string `json:"health"`
}

// Health of a relay in /v1/tree (MemberView.Health): from what it
// reports and how old its newest report is.
const (
	HealthOK       = "ok"        // ready, and its newest report is recent
	HealthNotReady = "not ready" // it says it should not get traffic (Problem says why)
	HealthStale    = "stale"     // it missed reports
	HealthGone     = "gone"      // no report for the tree's TTL: killed, cut off or moved; still shown for a while
)

// ReportedCache is a relay's cache as its report gives it.
type ReportedCache struct {
	Objects       int64 `json:"objects"`
	Bytes         int64 `json:"bytes"`
	Hits          int64 `json:"hits"`
	Misses        int64 `json:"misses"`
	UpstreamBytes int64 `json:"upstream_bytes"`
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

// Stream is one subscriber of /-/events (events.Client).
type Stream struct {
	// ID is what the subscriber calls itself: an agent's id, a child
	// relay's node name.
	ID string `json:"id"`
	// Addr is its remote address.
	Addr string `json:"addr"`
	// Relay is set for a child relay, unset for an agent.
	Relay bool `json:"relay"`
	// Group is a child relay's group.
	Group string `json:"group,omitempty"`
	// Generation is the catalog generation it reported when it connected.
	Generation uint64 `json:"generation"`
	// Since is when the stream opened.
	Since time.Time `json:"since"`
	// LastSeen is when something was last written to it successfully.
	LastSeen time.Time `json:"last_seen"`
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
}

// PinRequest is POST /v1/cache/pin's body.
type PinRequest struct {
	Paths []string `json:"paths"`
	Unpin bool     `json:"unpin"`
}

// PinResult is POST /v1/cache/pin's answer.
type PinResult struct {
	Pinned   []string `json:"pinned,omitempty"`
	Unpinned []string `json:"unpinned,omitempty"`
	// Missing are paths not cached (prefetch them first).
	Missing []string `json:"missing,omitempty"`
}

// PrefetchRequest is POST /v1/cache/prefetch's body.
type PrefetchRequest struct {
	Paths   []string `json:"paths"`
	Include []string `json:"include"`
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

// Accepted is the answer of POST /v1/sync.
type Accepted struct {
	Status string `json:"status"`
}
