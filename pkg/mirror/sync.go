package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/admindoc"
	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/httprange"
	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/store"
	"github.com/relayd/relayd/pkg/tufclient"
)

// Sync states (admindoc.SyncIdle, …).
const (
	StateIdle    = admindoc.SyncIdle
	StateSyncing = admindoc.SyncSyncing
	StateInSync  = admindoc.SyncInSync
	StateFailed  = admindoc.SyncFailed
)

// Progress is what GET /v1/sync shows; the document lives in admindoc.
type Progress = admindoc.SyncProgress

// syncState counts a sync in flight without taking the mirror's lock.
type syncState struct {
	generation                              uint64 // the target; 0: unknown
	objectsDone, bytesDone, fetched, errors atomic.Int64
	fromPeers                               atomic.Int64
}

// Bytes returns the object bytes received since start from the upstream
// (the WAN) and from the group's peers (the LAN), for the node's
// relayd_upstream_bytes_total and relayd_peer_bytes_total.
func (m *Mirror) Bytes() (upstream, peer int64) {
	return m.upstreamBytes.Load(), m.peerBytes.Load()
}

// Progress returns a snapshot, with rate and ETA of the sync in flight.
func (m *Mirror) Progress() Progress {
	m.mu.RLock()
	p := m.progress
	st := m.cur
	m.mu.RUnlock()
	if st != nil {
		p.ObjectsDone += st.objectsDone.Load()
		p.BytesDone += st.bytesDone.Load()
		p.BytesFetched = st.fetched.Load()
		p.Errors = st.errors.Load()
		p.ObjectsFromPeers = st.fromPeers.Load()
	}
	p.RejectedCatalogs = m.rejected.Load()
	p.ResumesRefused = m.resumeRefused.Load()
	if p.State == StateSyncing && !p.Started.IsZero() {
		if secs := m.clock.Now().Sub(p.Started).Seconds(); secs > 0 {
			p.RateBytesPerSec = float64(p.BytesFetched) / secs
			if p.RateBytesPerSec > 0 {
				p.ETASeconds = float64(p.BytesTotal-p.BytesDone) / p.RateBytesPerSec
			}
		}
	}
	return p
}

// Sync brings the mirror to the upstream's newest verified metadata:
// update the TUF client (one timestamp request when nothing changed),
// download what is missing, verify it, then switch. It returns when the
// new generation is live, nothing changed, or it failed (the live
// generation stays, and serves, even past its expiry). A new timestamp
// of the live generation moves no object: it becomes the one served.
// The steps: update, plan, fetch, goLive.
func (m *Mirror) Sync(ctx context.Context) error {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	st, err := m.update(ctx)
	if errors.Is(err, tufclient.ErrRollback) && m.Live() != nil {
		// The parents asked were behind what this relay trusts (one
		// that has not caught up with a re-signed timestamp): keep the
		// current generation; not an attack to alarm anyone about.
		m.log.Info().Err(err).Msg("the parents asked are behind the trusted metadata; the live generation stays")
		m.inSync()
		return nil
	}
	if err != nil {
		m.setFailed(err)
		return err
	}
	live := m.Live()
	switch {
	case live != nil && st.Catalog.Generation == live.Catalog.Generation:
		if !bytes.Equal(st.Timestamp, live.Timestamp) {
			if err := m.refresh(live, st); err != nil {
				m.setFailed(err)
				return err
			}
		}
		m.inSync()
		return nil
	case live != nil && st.Catalog.Generation < live.Catalog.Generation:
		// The TUF client refuses rollbacks; this is a metadata
		// directory older than the live generation (restored, or wiped).
		m.rejected.Add(1)
		err := fmt.Errorf("mirror: the verified metadata is of generation %d, the live one is %d: %w",
			st.Catalog.Generation, live.Catalog.Generation, tufclient.ErrRollback)
		m.setFailed(err)
		return err
	}
	l := newLive(st)
	want, need, sst := m.plan(l.Catalog)
	if err := m.fetch(ctx, l.Catalog, need, sst); err != nil {
		m.setFailed(err)
		return err
	}
	if err := m.goLive(l, want, sst); err != nil {
		m.setFailed(err)
		return err
	}
	return nil
}

// update runs the TUF client's update through the upstream. A parent
// that is behind what this relay trusts (ErrRollback) is not the tree's
// answer: the update is asked again, at most three times in all, which
// asks the parents in another random order.
func (m *Mirror) update(ctx context.Context) (*tufclient.State, error) {
	m.tufMu.Lock() // a sync's, and a peer's (Blob)
	defer m.tufMu.Unlock()
	var err error
	for range 3 {
		var st *tufclient.State
		if st, err = m.tuf.Update(ctx, m.meta); err == nil {
			return st, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		m.updateFailed(err)
		if !errors.Is(err, tufclient.ErrRollback) {
			break
		}
	}
	return nil, fmt.Errorf("mirror: update the metadata: %w", err)
}

// refresh makes a new timestamp of the live generation the one served
// (and announced), without moving an object.
func (m *Mirror) refresh(live *Live, st *tufclient.State) error {
	l := &Live{Catalog: live.Catalog, Timestamp: st.Timestamp, TimestampDigest: digest.FromBytes(st.Timestamp),
		Expires: st.Expires, Verified: st.Verified}
	if err := m.save(l); err != nil {
		return err
	}
	m.mu.Lock()
	m.live = l
	m.mu.Unlock()
	m.log.Info().Uint64("generation", l.Catalog.Generation).Time("expires", l.Expires).Msg("new timestamp of the live generation")
	if m.cfg.OnLive != nil {
		m.cfg.OnLive(l)
	}
	return nil
}

// inSync records a sync that found nothing to do.
func (m *Mirror) inSync() {
	m.mu.Lock()
	m.progress.State = StateInSync
	m.progress.LastError = ""
	m.progress.Finished = m.clock.Now()
	m.mu.Unlock()
}

// plan selects the objects of c (want, one per digest) and the downloads
// of those not on disk (need), and starts the progress of the sync (st).
func (m *Mirror) plan(c *catalog.Catalog) (want map[digest.Digest]catalog.Object, need []catalog.Object, st *syncState) {
	want = map[digest.Digest]catalog.Object{}
	var objects, have, bytesTotal, bytesHave int64
	if m.cfg.Serve {
		for _, o := range c.Objects {
			if !m.filter.Match(o.Path) {
				continue
			}
			objects++
			bytesTotal += o.Size
			if _, dup := want[o.Digest]; dup {
				have++
				bytesHave += o.Size
				continue
			}
			want[o.Digest] = o
			if m.store.Has(o.Digest) {
				have++
				bytesHave += o.Size
			} else {
				need = append(need, o)
			}
		}
	}
	st = &syncState{generation: c.Generation}
	m.mu.Lock()
	m.cur = st
	m.progress = Progress{State: StateSyncing, Generation: m.progress.Generation, Target: c.Generation,
		ObjectsTotal: objects, ObjectsDone: have, BytesTotal: bytesTotal, BytesDone: bytesHave, Started: m.clock.Now()}
	m.mu.Unlock()
	m.log.Info().Uint64("generation", c.Generation).Int("download", len(need)).Int64("objects", objects).Msg("sync started")
	return want, need, st
}

// fetch downloads and verifies the objects of need, Workers at a time,
// counting into st. A failed object does not stop the others; the first
// failure is returned once all have been tried.
func (m *Mirror) fetch(ctx context.Context, c *catalog.Catalog, need []catalog.Object, st *syncState) error {
	var firstErr error
	var errMu sync.Mutex
	g := new(errgroup.Group)
	g.SetLimit(m.cfg.Workers)
	for _, o := range need {
		g.Go(func() error {
			if ctx.Err() != nil {
				return nil
			}
			fromPeer, err := m.obtain(ctx, o, st, true)
			if fromPeer {
				st.fromPeers.Add(1)
			}
			if err != nil {
				st.errors.Add(1)
				m.log.Warn().Err(err).Str("path", o.Path).Msg("download failed")
				errMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				errMu.Unlock()
				return nil
			}
			st.objectsDone.Add(1)
			return nil
		})
	}
	_ = g.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if firstErr != nil {
		return fmt.Errorf("mirror: generation %d incomplete (%d errors, first: %w)", c.Generation, st.errors.Load(), firstErr)
	}
	return nil
}

// goLive switches to c once every selected blob (want) is on disk and
// verified: it pins them (blobs that were already here, e.g. from the
// cache, must not be evicted now), records the generation durably, then
// switches, and lets go of what the new generation no longer lists.
func (m *Mirror) goLive(l *Live, want map[digest.Digest]catalog.Object, st *syncState) error {
	c, prev := l.Catalog, m.Live()
	digests := make([]digest.Digest, 0, len(want))
	for d := range want {
		digests = append(digests, d)
	}
	if err := m.store.PinBlobs(keyPrefix, digests); err != nil {
		return err
	}
	held := m.nextHeld(prev, l)
	if err := m.saveHeld(held); err != nil {
		return err
	}
	if err := m.save(l); err != nil {
		return err
	}
	m.mu.Lock()
	m.live = l
	m.held = held
	if m.want <= c.Generation {
		m.want = 0
	}
	m.cur = nil
	m.progress.State = StateInSync
	m.progress.Generation = c.Generation
	m.progress.ObjectsDone = m.progress.ObjectsTotal
	m.progress.BytesDone = m.progress.BytesTotal
	m.progress.BytesFetched = st.fetched.Load()
	m.progress.ObjectsFromPeers = st.fromPeers.Load()
	m.progress.Finished = m.clock.Now()
	m.mu.Unlock()
	m.log.Info().Uint64("generation", c.Generation).Int64("fetched_bytes", st.fetched.Load()).Msg("generation live")
	if m.cfg.OnLive != nil {
		m.cfg.OnLive(l)
	}
	if ch := changes(prev, want); m.cfg.OnChanged != nil && len(ch) > 0 {
		go m.cfg.OnChanged(ch)
	}
	m.collect(m.heldDigests(held, want))
	return nil
}

func (m *Mirror) setFailed(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.cur; st != nil {
		m.progress.ObjectsDone += st.objectsDone.Load()
		m.progress.BytesDone += st.bytesDone.Load()
		m.progress.BytesFetched = st.fetched.Load()
		m.progress.Errors = st.errors.Load()
	}
	m.cur = nil
	m.progress.State = StateFailed
	m.progress.LastError = err.Error()
	m.progress.Finished = m.clock.Now()
}

// collect lets go of the blobs that the live generation no longer lists.
// Those of the generation just replaced are unpinned, not deleted: they
// stay, evictable under the quota, as the earlier versions children ask
// deltas against (dcz, pkg/contentcoding) until the next generation goes
// live; older ones are deleted, and the store then removes those no other
// key uses.
func (m *Mirror) collect(live map[digest.Digest]catalog.Object) {
	var stale, previous []string
	err := m.store.List(keyPrefix, func(key string, e store.Entry) bool {
		if _, ok := live[e.Digest]; !ok {
			if e.Pinned {
				previous = append(previous, key)
			} else {
				stale = append(stale, key)
			}
		}
		return true
	})
	if err != nil {
		m.log.Warn().Err(err).Msg("garbage collection: list")
		return
	}
	for _, k := range stale {
		if err := m.store.Delete(k); err != nil {
			m.log.Warn().Err(err).Str("key", k).Msg("garbage collection: delete")
		}
	}
	for _, k := range previous {
		if err := m.store.Update(k, func(e *store.Entry) { e.Pinned = false }); err != nil {
			m.log.Warn().Err(err).Str("key", k).Msg("garbage collection: unpin")
		}
	}
	if len(stale)+len(previous) > 0 {
		m.log.Info().Int("blobs", len(stale)).Int("kept_unpinned", len(previous)).Msg("collected blobs of older generations")
	}
}

// download fetches one object into the store, resuming a partial file
// with Range when its pin (the representation its bytes come from) is
// known, and verifies its digest before it counts. Every byte received is
// added to from (the upstream's or the peers' counter), kept or not.
func (m *Mirror) download(ctx context.Context, o catalog.Object, st *syncState, from *atomic.Int64,
	get func(http.Header) (*http.Response, error)) (err error) {
	w, err := m.store.Resume(o.Digest.Hex(), o.Size)
	if err != nil {
		return fmt.Errorf("mirror: %s: %w", o.Path, err)
	}
	defer w.Close()
	resp, resumed, err := m.open(o, w, get)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// On failure, the bytes of this attempt no longer count as done.
	var counted int64
	defer func() {
		if err != nil {
			st.bytesDone.Add(-counted)
		}
	}()
	st.bytesDone.Add(resumed)
	counted += resumed
	bp := object.GetBuffer()
	defer object.PutBuffer(bp)
	buf := *bp
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			from.Add(int64(n))
			if _, err := w.Write(buf[:n]); err != nil {
				if errors.Is(err, store.ErrNoSpace) {
					// A partial file on a full disk only keeps it full.
					w.Abort()
				}
				return fmt.Errorf("mirror: %s: %w", o.Path, err)
			}
			st.fetched.Add(int64(n))
			st.bytesDone.Add(int64(n))
			counted += int64(n)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if refusedCoding(rerr) {
				w.Abort() // decoded from a refused answer: not to be resumed
			}
			// The partial file stays for the next attempt to resume.
			return fmt.Errorf("mirror: %s: %w", o.Path, rerr)
		}
	}
	if _, err := w.Commit(blobKey(o.Digest), store.Entry{Pinned: true, Stored: m.clock.Now()}, o.Digest); err != nil {
		if errors.Is(err, store.ErrDigestMismatch) {
			m.log.Error().Err(err).Str("path", o.Path).Msg("upstream sent wrong bytes; discarded")
		}
		return fmt.Errorf("mirror: %s: %w", o.Path, err)
	}
	return nil
}

// open asks for o: for the rest of the partial file in w when w is pinned
// to a representation (httprange.Pin, kept with the file across restarts)
// and the answer continues that same one; otherwise, with w reset, for the
// whole object from byte 0, whose representation is then pinned before
// its first byte is written. resumed is where the answer's body starts.
func (m *Mirror) open(o catalog.Object, w *store.Writer, get func(http.Header) (*http.Response, error)) (resp *http.Response, resumed int64, err error) {
	var pin httprange.Pin
	if have := w.Written(); have > 0 {
		etag, size, ok := w.Pin()
		pin = httprange.Pin{ETag: etag, Size: size}
		if ok && pin.Valid() && size == o.Size && have < size {
			hdr := http.Header{}
			pin.Header(hdr, have, -1)
			if resp, err = get(hdr); err != nil {
				return nil, 0, fmt.Errorf("mirror: %s: %w", o.Path, err)
			}
			cerr := pin.Check(resp, have, -1)
			if cerr == nil {
				return resp, have, nil
			}
			m.refused(o, have, cerr)
			if resp.StatusCode != http.StatusOK {
				// Not the bytes on disk, and not a whole object either:
				// ask again, from byte 0.
				resp.Body.Close()
				resp = nil
			}
		}
		if err := w.Reset(); err != nil {
			if resp != nil {
				resp.Body.Close()
			}
			return nil, 0, fmt.Errorf("mirror: %s: %w", o.Path, err)
		}
	}
	if resp == nil {
		if resp, err = get(http.Header{}); err != nil {
			return nil, 0, fmt.Errorf("mirror: %s: %w", o.Path, err)
		}
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, 0, fmt.Errorf("mirror: %s: upstream status %d", o.Path, resp.StatusCode)
	}
	// A body without a strong ETag and its length is downloaded, but a
	// break in it is not resumed: it starts over.
	if p, perr := httprange.PinResponse(resp); perr == nil {
		if err := w.SetPin(p.ETag, p.Size); err != nil {
			resp.Body.Close()
			return nil, 0, fmt.Errorf("mirror: %s: %w", o.Path, err)
		}
	}
	return resp, 0, nil
}

// refused counts an answer that cannot continue a partial file, and logs
// it (rate-limited).
func (m *Mirror) refused(o catalog.Object, off int64, err error) {
	m.resumeRefused.Add(1)
	m.lim.Event(&m.log, zerolog.WarnLevel, "resume refused").Err(err).Str("path", o.Path).Int64("offset", off).
		Msg("resume refused: not the representation the partial file holds; starting over from byte 0")
}
