// The node as a Prometheus collector: every relayd_* series of /metrics.
package node

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics is the node as a Prometheus collector: a scrape reads each
// source once (the counters of cache, store, mirror, upstream, group and
// content port) and reports what it read. The fill latency histogram is
// registered apart (openRelay).
type metrics Node

var _ prometheus.Collector = (*metrics)(nil)

// desc is a relayd_* series of the exposition; vtype says whether it
// counts or gauges.
type desc struct {
	*prometheus.Desc
	vtype prometheus.ValueType
}

func newDesc(name, help string, vtype prometheus.ValueType, labels ...string) desc {
	return desc{prometheus.NewDesc("relayd_"+name, help, labels, nil), vtype}
}

// The series; operations.md lists them. Which of them a node reports
// depends on what it runs (a store, a cache, a mirror, a group).
var (
	mGeneration        = newDesc("generation", "Catalog generation this node serves (0: none).", prometheus.GaugeValue)
	mAgents            = newDesc("agents_connected", "Agents holding an event stream open.", prometheus.GaugeValue)
	mChildren          = newDesc("children_connected", "Child relays holding an event stream open.", prometheus.GaugeValue)
	mFailovers         = newDesc("upstream_failovers_total", "Upstream requests that moved on from a failed parent.", prometheus.CounterValue)
	mResumes           = newDesc("upstream_resumes_total", "Transfers resumed with Range on another parent after breaking.", prometheus.CounterValue)
	mResumeRefused     = newDesc("upstream_resume_refused_total", "Answers to a Range resume that were not the same representation (another strong ETag or length, none, a 200): not spliced.", prometheus.CounterValue)
	mFallbacks         = newDesc("upstream_fallbacks_total", "Requests sent to the fallback because every parent failed.", prometheus.CounterValue)
	mEvictions         = newDesc("evictions_total", "Blobs evicted to stay within the quota.", prometheus.CounterValue)
	mStoreBytes        = newDesc("store_bytes", "Bytes of stored blobs.", prometheus.GaugeValue)
	mStoreBlobs        = newDesc("store_blobs", "Stored blobs.", prometheus.GaugeValue)
	mBytesServed       = newDesc("bytes_served_total", "Body bytes of object responses.", prometheus.CounterValue)
	mGroupMembers      = newDesc("group_members", "Members of this relay's group by state.", prometheus.GaugeValue, "state")
	mMirrorTarget      = newDesc("mirror_target_generation", "Generation the mirror syncs toward (the upstream's newest).", prometheus.GaugeValue)
	mMirrorLag         = newDesc("mirror_lag_generations", "Generations the live one is behind the upstream's newest.", prometheus.GaugeValue)
	mMirrorObjectsDone = newDesc("mirror_objects_done", "Objects of the generation in sync that are on disk.", prometheus.GaugeValue)
	mMirrorObjects     = newDesc("mirror_objects_total", "Objects of the generation in sync.", prometheus.GaugeValue)
	// mRequests's result label is hit, miss, stale, revalidated, peer
	// (fills from the group's owner) or error (an error status).
	mRequests      = newDesc("requests_total", "Object requests by result.", prometheus.CounterValue, "result")
	mUpstreamBytes = newDesc("upstream_bytes_total", "Bytes fetched from upstream (the WAN): cache fills and mirror syncs.", prometheus.CounterValue)
	mPeerBytes     = newDesc("peer_bytes_total", "Bytes fetched from other relays of the group (the LAN): cache fills and mirror syncs.", prometheus.CounterValue)
	mFills         = newDesc("fills_total", "Upstream fills started.", prometheus.CounterValue)
	mFillErrors    = newDesc("fill_errors_total", "Upstream fills that failed.", prometheus.CounterValue)
	mCoalesced     = newDesc("coalesced_total", "Requests that joined a fill in flight.", prometheus.CounterValue)
	// The tree's TUF metadata (relays with --root; the expiry also on an
	// origin, from the timestamp it serves).
	mTUFExpires  = newDesc("tuf_metadata_expires_timestamp_seconds", "When the TUF metadata this node serves expires (Unix seconds; the earliest expiry of its trusted set).", prometheus.GaugeValue)
	mTUFGen      = newDesc("tuf_generation", "Generation (snapshot version) of the verified TUF metadata this node serves.", prometheus.GaugeValue)
	mTUFFailures = newDesc("tuf_update_failures_total", "TUF metadata updates that failed, by reason (expired, rollback, not_found, too_large, invalid, unavailable).", prometheus.CounterValue, "reason")
	// The WAN as it is accounted (hierarchy.Client.Traffic): bytes on the
	// wire apart from bytes of content, per catalog kind.
	mWireBytes    = newDesc("upstream_wire_bytes_total", "Body bytes read from upstreams and fallbacks as they crossed the wire (before any decoding), by catalog kind.", prometheus.CounterValue, "kind")
	mContentBytes = newDesc("upstream_content_bytes_total", "Bytes of content those bodies carried (decoded), by catalog kind: wire ÷ content is what encodings saved.", prometheus.CounterValue, "kind")
	// Transfer windows (hierarchy.Client.WindowStatus).
	mWindowRate      = newDesc("upstream_window_rate_bytes", "Rate the transfer window in force allows background traffic, bytes per second (0: held until the window ends; -1: no rule matches, no window cap).", prometheus.GaugeValue)
	mWaitingBytes    = newDesc("upstream_waiting_bytes", "Bytes still to read of the upstream transfers waiting for a rate bucket or the window, by class.", prometheus.GaugeValue, "class")
	mWaitingRequests = newDesc("upstream_waiting_requests", "Upstream transfers waiting for a rate bucket or the window, by class (foreground, background, urgent).", prometheus.GaugeValue, "class")
	// Encoded answers refused (hierarchy.Client.DeltaFallbacks).
	mDeltaFallback = newDesc("delta_fallbacks_total", "Encoded answers (zstd, dcz) refused: corrupt, or not the signed bytes; the key's next fetch is a full transfer.", prometheus.CounterValue)
)

// Describe sends every series the node may report.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []desc{mGeneration, mAgents, mChildren, mFailovers, mResumes, mResumeRefused, mFallbacks, mEvictions, mStoreBytes,
		mStoreBlobs, mBytesServed, mGroupMembers, mMirrorTarget, mMirrorLag, mMirrorObjectsDone, mMirrorObjects, mRequests,
		mUpstreamBytes, mPeerBytes, mFills, mFillErrors, mCoalesced, mWireBytes, mContentBytes, mWindowRate, mWaitingBytes,
		mWaitingRequests, mTUFExpires, mTUFGen, mTUFFailures, mDeltaFallback} {
		ch <- d.Desc
	}
}

// Collect reads each source once and sends the values.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	n := (*Node)(m)
	emit := func(d desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d.Desc, d.vtype, float64(v), labels...)
	}
	emit(mGeneration, int64(n.generation()))
	agents, children := n.events.Count()
	emit(mAgents, int64(agents))
	emit(mChildren, int64(children))
	emit(mBytesServed, n.content.BytesServed())
	emit(mRequests, n.content.Failed(), "error")
	// Resumes refused by the upstream client, the cache's peer resumes and
	// the mirror's partial files alike: one series.
	var refused int64
	if n.up != nil {
		s := n.up.Stats()
		emit(mFailovers, s.Failovers)
		emit(mResumes, s.Resumes)
		emit(mFallbacks, s.Fallbacks)
		emit(mDeltaFallback, n.up.DeltaFallbacks())
		refused += s.ResumesRefused
	}
	if n.store != nil {
		s := n.store.Stats()
		emit(mEvictions, s.Evictions)
		emit(mStoreBytes, s.Bytes)
		emit(mStoreBlobs, int64(s.Blobs))
	}
	if n.group != nil {
		var alive, gone int64
		for _, mb := range n.group.Members() {
			switch mb.State {
			case "alive":
				alive++
			case "gone":
				gone++
			}
		}
		emit(mGroupMembers, alive, "alive")
		emit(mGroupMembers, gone, "gone")
	}
	if n.mirror != nil {
		p := n.mirror.Progress()
		emit(mMirrorTarget, int64(p.Target))
		emit(mMirrorLag, int64(max(p.Target, p.Generation)-p.Generation))
		emit(mMirrorObjectsDone, p.ObjectsDone)
		emit(mMirrorObjects, p.ObjectsTotal)
		refused += p.ResumesRefused
	}
	// Bytes from upstream and from peers: the cache's fills and the
	// mirror's syncs, one series each.
	var upBytes, peerBytes int64
	if n.mirror != nil {
		upBytes, peerBytes = n.mirror.Bytes()
	}
	if n.cache != nil {
		s := n.cache.Stats()
		emit(mRequests, s.Hits, "hit")
		emit(mRequests, s.Misses, "miss")
		emit(mRequests, s.Stale, "stale")
		emit(mRequests, s.Revalidated, "revalidated")
		emit(mRequests, s.PeerFills, "peer")
		upBytes += s.UpstreamBytes
		peerBytes += s.PeerBytes
		emit(mFills, s.Fills)
		emit(mFillErrors, s.FillErrors)
		emit(mCoalesced, s.Coalesced)
		refused += s.ResumesRefused
	}
	if n.cache != nil || n.mirror != nil {
		emit(mUpstreamBytes, upBytes)
		emit(mPeerBytes, peerBytes)
	}
	if n.up != nil {
		emit(mResumeRefused, refused)
		m.collectWAN(emit)
	}
	m.collectTUF(emit)
}

// collectWAN sends the WAN accounting and the transfer window's series.
func (m *metrics) collectWAN(emit func(d desc, v int64, labels ...string)) {
	n := (*Node)(m)
	for _, k := range n.up.Traffic().Kinds {
		emit(mWireBytes, k.WireBytes, k.Kind)
		emit(mContentBytes, k.ContentBytes, k.Kind)
	}
	w := n.up.WindowStatus()
	if w == nil {
		return
	}
	if w.Schedule != "" {
		rate := w.RateBytesPerSec
		if !w.Limited {
			rate = -1
		}
		emit(mWindowRate, rate)
	}
	for _, c := range w.Waiting {
		emit(mWaitingRequests, c.Requests, c.Class)
		emit(mWaitingBytes, c.Bytes, c.Class)
	}
}

// collectTUF sends the metadata series.
func (m *metrics) collectTUF(emit func(d desc, v int64, labels ...string)) {
	n := (*Node)(m)
	_, expires := n.freshness()
	switch {
	case !expires.IsZero():
		emit(mTUFExpires, expires.Unix())
	case n.mirror != nil:
		emit(mTUFExpires, 0) // no verified metadata yet
	}
	if n.mirror == nil {
		return
	}
	var gen uint64
	if l := n.mirror.Live(); l != nil {
		gen = l.Catalog.Generation
	}
	emit(mTUFGen, int64(gen))
	for reason, v := range n.mirror.Failures() {
		emit(mTUFFailures, v, reason)
	}
}
