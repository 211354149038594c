package admindoc

import (
	"time"

	"github.com/relayd/relayd/pkg/wire"
)

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
	// representation (another ETag or length, no strong ETag, a 200), so
	// their bytes were not appended.
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
	// not the same representation (not spliced: the fill failed).
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

// GroupView is one group in /v1/tree: its relays and the groups below it
// (hierarchy.GroupView).
type GroupView struct {
	Group    string       `json:"group"`
	Members  []MemberView `json:"members"`
	Children []GroupView  `json:"children,omitempty"`
}

// MemberView is one relay in /v1/tree (hierarchy.MemberView).
type MemberView struct {
	Node       string `json:"node"`
	Mode       string `json:"mode"`
	URL        string `json:"url,omitempty"`
	Generation uint64 `json:"generation"`
	// Lag is how many generations the relay is behind the one the relay
	// showing the tree serves (never a number a report claims); Ahead is
	// set for a relay that claims a newer one (lag 0).
	Lag     uint64 `json:"lag"`
	Ahead   bool   `json:"ahead,omitempty"`
	Ready   bool   `json:"ready"`
	Problem string `json:"problem,omitempty"`
	Agents  int    `json:"agents"`
	// Cache is the relay's cache as its report gives it.
	Cache *wire.CacheStats `json:"cache,omitempty"`
	// Age is how old the newest report of this relay is ("" for the
	// relay's own group, which it knows first hand).
	Age string `json:"age,omitempty"`
	// Health is HealthOK, HealthNotReady, HealthStale or HealthGone.
	Health string `json:"health"`
	// MetadataAge is how long before the relay's report it last
	// verified the tree's TUF metadata ("" when it verifies none: a
	// plain proxy, an origin, a relay too old to say). MetadataExpires
	// is when the metadata it serves expires; ExpiredSince is set once
	// it has (the relay keeps serving what it holds, and cannot give its
	// children fresh metadata).
	MetadataAge     string    `json:"metadata_age,omitempty"`
	MetadataExpires time.Time `json:"metadata_expires,omitzero"`
	ExpiredSince    string    `json:"expired_since,omitempty"`
}

// Health of a relay in /v1/tree (MemberView.Health): from what it
// reports and how old its newest report is.
const (
	HealthOK       = "ok"        // ready, and its newest report is recent
	HealthNotReady = "not ready" // it says it should not get traffic (Problem says why)
	HealthStale    = "stale"     // it missed reports
	HealthGone     = "gone"      // no report for the tree's TTL: killed, cut off or moved; still shown for a while
)

// Stream is one subscriber of /-/events in /v1/agents (events.Client).
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
	// LastSeen is when something was last written to it successfully
	// (an event or a ping): a stream silent for long is a dead peer
	// that TCP has not noticed yet.
	LastSeen time.Time `json:"last_seen"`
}

// PinResult is POST /v1/cache/pin's answer (proxycache.PinResult).
type PinResult struct {
	Pinned   []string `json:"pinned,omitempty"`
	Unpinned []string `json:"unpinned,omitempty"`
	// Missing are paths not cached (prefetch them first).
	Missing []string `json:"missing,omitempty"`
}

// PrefetchStatus is GET /v1/cache/prefetch: the last prefetch job
// (proxycache.PrefetchStatus).
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

// Member is one relay of the group in /v1/members (group.Member).
type Member struct {
	Name       string     `json:"name"`
	Addr       string     `json:"gossip_addr"`
	State      string     `json:"state"` // alive or gone
	Meta       MemberMeta `json:"meta"`
	LastChange time.Time  `json:"last_change"`
	Self       bool       `json:"self,omitempty"`
}

// MemberMeta is what a relay tells its group about itself, carried in
// memberlist's node metadata (group.Meta; its JSON is the gossip
// encoding, at most memberlist.MetaMaxSize = 512 bytes).
type MemberMeta struct {
	// Group the relay belongs to.
	Group string `json:"g"`
	// Mode is origin, mirror or proxy.
	Mode string `json:"m"`
	// URL is the relay's content base URL, as agents and peers reach it.
	URL string `json:"u"`
	// Generation is the catalog generation it serves (0: none).
	Generation uint64 `json:"n,omitempty"`
	// Ready is false while it is syncing or its disk is failing.
	Ready bool `json:"r,omitempty"`
	// Verified and Expires are when it last verified the tree's TUF
	// metadata and when that metadata expires, in Unix seconds (0:
	// none), so the group's tree shows every member's freshness.
	Verified int64 `json:"v,omitempty"`
	Expires  int64 `json:"x,omitempty"`
}

// UpstreamWindow is the transfer window in force for background WAN
// traffic and what waits for the buckets (hierarchy.Client.WindowStatus),
// in /v1/status.
type UpstreamWindow struct {
	// Schedule is --upstream-schedule as its rules were written ("" none).
	Schedule string `json:"schedule,omitempty"`
	// Rule is the rule in force ("" when none matches: no window cap).
	Rule string `json:"rule,omitempty"`
	// Limited: a rule caps background traffic at RateBytesPerSec; Held:
	// that rate is 0, and background requests wait for the window to end.
	Limited         bool  `json:"limited"`
	Held            bool  `json:"held"`
	RateBytesPerSec int64 `json:"rate_bytes_per_sec"`
	// Until is when the window may change next (zero without a schedule).
	Until time.Time `json:"until,omitzero"`
	// Waiting is, per class, what waits now.
	Waiting []ClassWaiting `json:"waiting"`
}

// ClassWaiting is what of one class (foreground, background, urgent)
// waits now for a rate bucket or the window: transfers, and the bytes
// they have still to read when their length is known.
type ClassWaiting struct {
	Class    string `json:"class"`
	Requests int64  `json:"requests"`
	Bytes    int64  `json:"bytes"`
}

// UpstreamTraffic is the bytes fetched from upstreams and fallbacks (the
// WAN) since start (hierarchy.Client.Traffic): on the wire, as sent, and
// of content, as stored; with encodings (zstd, deltas) the wire carries
// less than the content. WireRatio is wire ÷ content (0 before any
// content).
type UpstreamTraffic struct {
	WireBytes    int64         `json:"wire_bytes"`
	ContentBytes int64         `json:"content_bytes"`
	WireRatio    float64       `json:"wire_ratio"`
	Kinds        []KindTraffic `json:"kinds"`
}

// KindTraffic is UpstreamTraffic for one catalog kind.
type KindTraffic struct {
	Kind         string `json:"kind"`
	WireBytes    int64  `json:"wire_bytes"`
	ContentBytes int64  `json:"content_bytes"`
}
