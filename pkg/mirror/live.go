// The live generation: the verified catalog the mirror serves, the raw
// timestamp it came with (what children are served at
// /-/tuf/timestamp.json), and how fresh its metadata is. It is kept in
// the store, so that a restarted relay serves the same generation and
// timestamp at once, whether or not its upstream is reachable or its
// metadata has expired since.
package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/tufclient"
)

// Live is a generation the mirror serves (or, for a proxy that follows
// the metadata, verifies against).
type Live struct {
	// Catalog is the verified object list; its Generation is the
	// snapshot version.
	Catalog *catalog.Catalog
	// Timestamp is the raw timestamp.json verified with it, served as
	// is; TimestampDigest its sha256 (the ETag, and the digest the
	// generation event carries).
	Timestamp       []byte
	TimestampDigest digest.Digest
	// Expires is the earliest expiry of the trusted metadata; Verified
	// when it was last verified.
	Expires, Verified time.Time
}

// Expired reports whether the metadata of l had expired at now.
func (l *Live) Expired(now time.Time) bool { return !l.Expires.IsZero() && !now.Before(l.Expires) }

func newLive(st *tufclient.State) *Live {
	return &Live{Catalog: st.Catalog, Timestamp: st.Timestamp, TimestampDigest: digest.FromBytes(st.Timestamp),
		Expires: st.Expires, Verified: st.Verified}
}

// stored is Live as the store keeps it.
type stored struct {
	Generation uint64           `json:"generation"`
	Published  time.Time        `json:"published"`
	Objects    []catalog.Object `json:"objects"`
	Timestamp  []byte           `json:"timestamp"`
	Expires    time.Time        `json:"expires"`
	Verified   time.Time        `json:"verified"`
}

// save records l durably, before it goes live.
func (m *Mirror) save(l *Live) error {
	b, err := json.Marshal(stored{Generation: l.Catalog.Generation, Published: l.Catalog.Published, Objects: l.Catalog.Objects,
		Timestamp: l.Timestamp, Expires: l.Expires, Verified: l.Verified})
	if err != nil {
		return fmt.Errorf("mirror: encode the live generation: %w", err)
	}
	return m.store.PutMeta(metaLive, b)
}

// restore loads the live generation the store keeps, if any. What the
// relay verified and wrote to its own disk is trusted like the blobs
// next to it.
func (m *Mirror) restore() {
	b, err := m.store.GetMeta(metaLive)
	if err != nil || len(b) == 0 {
		return
	}
	var s stored
	if err := json.Unmarshal(b, &s); err != nil {
		m.log.Error().Err(err).Msg("stored live generation does not decode; ignoring it")
		return
	}
	c, err := catalog.New(s.Generation, s.Published, s.Objects)
	if err != nil {
		m.log.Error().Err(err).Msg("stored live generation is not a valid catalog; ignoring it")
		return
	}
	l := &Live{Catalog: c, Timestamp: s.Timestamp, TimestampDigest: digest.FromBytes(s.Timestamp), Expires: s.Expires, Verified: s.Verified}
	m.live = l
	m.progress.Generation = c.Generation
	m.log.Info().Uint64("generation", c.Generation).Time("expires", l.Expires).Msg("restored live generation")
}

// File returns a verified metadata file by its served name, for
// /-/tuf/<name>: timestamp.json is the live generation's (a child must
// not be told of a generation whose objects this relay does not hold
// yet), every versioned file comes from the TUF client.
func (m *Mirror) File(name string) ([]byte, bool) {
	if name == timestampName {
		l := m.Live()
		if l == nil {
			return nil, false
		}
		return l.Timestamp, true
	}
	return m.tuf.File(name)
}

// timestampName is wire.TimestampName (the mirror speaks no HTTP).
const timestampName = "timestamp.json"

// Failure reasons of metadata updates (relayd_tuf_update_failures_total).
const (
	ReasonExpired     = "expired"     // the upstream's metadata has expired
	ReasonRollback    = "rollback"    // every parent asked was behind what is trusted
	ReasonMissing     = "not_found"   // the upstream serves no metadata
	ReasonTooLarge    = "too_large"   // a file over its limit
	ReasonInvalid     = "invalid"     // refused: bad signatures, malformed, mixed, …
	ReasonUnavailable = "unavailable" // no upstream could be asked (transfer failures)
)

// Reasons lists the failure reasons, in the order Failures counts them.
var Reasons = []string{ReasonExpired, ReasonRollback, ReasonMissing, ReasonTooLarge, ReasonInvalid, ReasonUnavailable}

type failures [6]atomic.Int64

// Failures returns how many metadata updates failed since start, by
// reason (Reasons).
func (m *Mirror) Failures() map[string]int64 {
	out := make(map[string]int64, len(Reasons))
	for i, r := range Reasons {
		out[r] = m.failures[i].Load()
	}
	return out
}

// errTransfer marks a metadata fetch that failed for want of an answer
// (no upstream reachable, a broken transfer): not a verdict on metadata.
var errTransfer = errors.New("mirror: metadata transfer failed")

// fetcher is the upstream's metadata with its transfer failures marked.
type fetcher struct{ f tufclient.Fetcher }

func (f fetcher) FetchMeta(ctx context.Context, name string, limit int64) ([]byte, error) {
	b, err := f.f.FetchMeta(ctx, name, limit)
	if err != nil && !errors.Is(err, tufclient.ErrNotFound) && !errors.Is(err, catalog.ErrTooLarge) && ctx.Err() == nil {
		err = fmt.Errorf("%w: %w", errTransfer, err)
	}
	return b, err
}

// reason classifies a failed update (an index of Reasons).
func reason(err error) int {
	switch {
	case errors.Is(err, tufclient.ErrExpired):
		return 0
	case errors.Is(err, tufclient.ErrRollback):
		return 1
	case errors.Is(err, tufclient.ErrNotFound):
		return 2
	case errors.Is(err, catalog.ErrTooLarge):
		return 3
	case errors.Is(err, errTransfer):
		return 5
	}
	return 4
}

// updateFailed counts and logs a failed metadata update: the live
// generation stays, and a relay whose metadata expired says since when
// (once an interval).
func (m *Mirror) updateFailed(err error) {
	i := reason(err)
	m.failures[i].Add(1)
	if Reasons[i] != ReasonUnavailable {
		m.rejected.Add(1)
	}
	now := m.clock.Now()
	if l := m.Live(); l != nil && l.Expired(now) {
		m.lim.Event(&m.log, zerolog.ErrorLevel, "expired").Err(err).Time("expired", l.Expires).
			Msgf("metadata expired since %s; serving the objects held (generation %d) until fresh metadata verifies",
				l.Expires.UTC().Format(time.RFC3339), l.Catalog.Generation)
	}
}
