// The client workflow of the TUF spec (5.3–5.6), in go-tuf updater's
// order: root chain, timestamp, snapshot, targets and delegated roles.
package tufclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// getFunc fetches a served name within max bytes.
type getFunc func(ctx context.Context, name string, max int64) ([]byte, error)

// Update runs the client workflow against f and returns the new state.
// An unchanged timestamp costs one request. On error nothing new is
// trusted beyond what verified (a newer root, timestamp or snapshot stays
// the rollback floor), and Current still returns the last state.
func (c *Client) Update(ctx context.Context, f Fetcher) (*State, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.opt.Memo != nil {
		return c.memoUpdate(ctx, f)
	}
	return c.update(ctx, f)
}

// update is Update; c.mu is held.
func (c *Client) update(ctx context.Context, f Fetcher) (*State, error) {
	now := c.opt.Now()
	get := func(ctx context.Context, name string, max int64) ([]byte, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b, err := f.FetchMeta(ctx, name, max)
		if err == nil && int64(len(b)) > max {
			err = fmt.Errorf("%w: %s: more than %d bytes", &metadata.ErrDownloadLengthMismatch{Msg: "endless data"}, name, max)
		}
		return b, err
	}
	tsRaw, err := get(ctx, "timestamp.json", TimestampMaxBytes)
	if err != nil {
		return nil, fmt.Errorf("tufclient: timestamp.json: %w", err)
	}
	if c.complete() && bytes.Equal(tsRaw, c.set.tsRaw) {
		return c.unchanged(now)
	}
	if st, ok := c.tryResigned(tsRaw, now); ok {
		return st, nil
	}
	t, err := trustedmetadata.New(c.rootRaw)
	if err != nil {
		return nil, fmt.Errorf("tufclient: trusted root: %w", err)
	}
	t.RefTime = now
	if err := c.updateRoot(ctx, get, t); err != nil {
		return nil, err
	}
	tsUse, same, err := c.updateTimestamp(t, tsRaw, now)
	if err != nil {
		return nil, err
	}
	if same {
		return c.unchanged(now)
	}
	snapRaw, err := c.updateSnapshot(ctx, get, t, now)
	if err != nil {
		return nil, err
	}
	sameRoot := c.set != nil && c.set.root.Signed.Version == t.Root.Signed.Version
	if sameRoot && bytes.Equal(snapRaw, c.set.snapRaw) {
		return c.resigned(t, tsUse, now)
	}
	var prev *trustedSet
	if sameRoot {
		prev = c.set
	}
	roles, order, err := c.loadRoles(ctx, t, get, prev)
	if err != nil {
		return nil, err
	}
	set := &trustedSet{root: t.Root, ts: t.Timestamp, tsRaw: tsUse, snap: t.Snapshot, snapRaw: snapRaw, roles: roles, order: order}
	if set.catalog, set.srcs, err = enumerate(roles, order, t.Snapshot.Signed.Version, c.set); err != nil {
		return nil, err
	}
	return c.commit(set, now)
}

// tryResigned takes raw when it is the trusted generation's timestamp
// re-signed (or the trusted version again) and verifies with the trusted
// root: one request, no walk of the root chain. Anything else (a new
// generation, a timestamp the trusted root's keys do not verify, an
// expired root, a rollback) goes the whole way, root chain first: a root
// rotation reaches a client with the next generation, the next timestamp
// key, or when the trusted root expires.
func (c *Client) tryResigned(raw []byte, now time.Time) (*State, bool) {
	if !c.complete() || !bytes.Equal(c.snapFloor, c.set.snapRaw) {
		return nil, false
	}
	t, err := trustedmetadata.New(c.rootRaw)
	if err != nil {
		return nil, false
	}
	t.RefTime = now
	if _, err := t.UpdateTimestamp(c.tsFloor); err != nil && t.Timestamp == nil {
		return nil, false
	}
	_, err = t.UpdateTimestamp(raw)
	if errors.Is(err, &metadata.ErrEqualVersionNumber{}) {
		st, err := c.unchanged(now)
		return st, err == nil
	}
	if err != nil {
		return nil, false
	}
	meta := t.Timestamp.Signed.Meta[metadata.SNAPSHOT+".json"]
	if meta == nil || meta.Version != c.set.snap.Signed.Version || meta.VerifyLengthHashes(c.set.snapRaw) != nil {
		return nil, false
	}
	if _, err := t.UpdateSnapshot(c.set.snapRaw, true); err != nil {
		return nil, false
	}
	c.tsFloor = raw
	st, err := c.resigned(t, raw, now)
	return st, err == nil
}

// complete says whether the current set is all there is to trust: its
// timestamp is the newest verified, and it was verified with the newest
// trusted root (after a rotation its roles are verified again).
func (c *Client) complete() bool {
	return c.set != nil && bytes.Equal(c.tsFloor, c.set.tsRaw) && c.set.root.Signed.Version == c.root.Signed.Version
}

// unchanged is the answer when the source has nothing newer: the last
// state, confirmed now, unless something in it expired.
func (c *Client) unchanged(now time.Time) (*State, error) {
	st := c.cur.Load()
	if now.After(st.Expires) {
		return nil, &ExpiredError{Role: st.ExpiresRole, Since: st.Expires}
	}
	n := *st
	n.Verified = now
	c.cur.Store(&n)
	return &n, nil
}

// resigned takes a new timestamp for the snapshot already trusted: no
// other file is fetched; the kept metadata's expiry is checked again.
func (c *Client) resigned(t *trustedmetadata.TrustedMetadata, tsRaw []byte, now time.Time) (*State, error) {
	set := *c.set
	set.ts, set.tsRaw, set.snap = t.Timestamp, tsRaw, t.Snapshot
	return c.commit(&set, now)
}

// commit checks the set's expiry, persists it and makes it current.
func (c *Client) commit(set *trustedSet, now time.Time) (*State, error) {
	st := set.state(now)
	if now.After(st.Expires) {
		return nil, &ExpiredError{Role: st.ExpiresRole, Since: st.Expires}
	}
	if err := c.persist(set); err != nil {
		return nil, err
	}
	c.set = set
	c.cur.Store(st)
	c.setFiles(set.files())
	c.log.Debug().Int64("generation", set.snap.Signed.Version).Int64("timestamp", set.ts.Signed.Version).
		Int("objects", len(set.catalog.Objects)).Msg("metadata verified")
	return st, nil
}

// updateRoot walks the root chain (5.3.3–5.3.9): N+1.root.json until the
// source has none, at most MaxRootRotations. Each verified root is
// persisted at once. When the timestamp or snapshot keys changed, the
// trusted timestamp and snapshot are dropped (5.3.11, fast-forward
// recovery).
func (c *Client) updateRoot(ctx context.Context, get getFunc, t *trustedmetadata.TrustedMetadata) error {
	old := t.Root
	for v := old.Signed.Version + 1; v <= old.Signed.Version+MaxRootRotations; v++ {
		name := rootFile(v)
		raw, err := get(ctx, name, RootMaxBytes)
		if errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil {
			return fmt.Errorf("tufclient: %s: %w", name, err)
		}
		if _, err := t.UpdateRoot(raw); err != nil {
			return fmt.Errorf("tufclient: %s: %w", name, err)
		}
		if err := c.writeFile(name, raw); err != nil {
			return err
		}
		c.root, c.rootRaw = t.Root, raw
		c.rootNow.Store(t.Root)
		c.addRoot(v, raw)
		c.log.Info().Int64("version", v).Msg("new root trusted")
	}
	if !t.Root.Signed.ConsistentSnapshot {
		return errors.New("tufclient: the root does not use consistent snapshots (relayd serves only versioned metadata names)")
	}
	if t.Root != old && (roleChanged(old, t.Root, metadata.TIMESTAMP) || roleChanged(old, t.Root, metadata.SNAPSHOT)) {
		c.log.Info().Msg("timestamp or snapshot keys rotated: trusted timestamp and snapshot dropped (fast-forward recovery)")
		c.tsFloor, c.snapFloor = nil, nil
		c.removeFile("timestamp.json")
	}
	return nil
}

// roleChanged says whether role has other keys or another threshold in b.
func roleChanged(a, b *metadata.Metadata[metadata.RootType], role string) bool {
	ra, rb := a.Signed.Roles[role], b.Signed.Roles[role]
	if ra == nil || rb == nil {
		return true
	}
	ka, kb := slices.Clone(ra.KeyIDs), slices.Clone(rb.KeyIDs)
	slices.Sort(ka)
	slices.Sort(kb)
	return ra.Threshold != rb.Threshold || !slices.Equal(ka, kb)
}

// updateTimestamp loads the trusted timestamp as the floor, then raw
// (5.4). It returns the timestamp to go on with, or same when the source
// has the version already trusted and the current state is complete.
func (c *Client) updateTimestamp(t *trustedmetadata.TrustedMetadata, raw []byte, now time.Time) (use []byte, same bool, err error) {
	if c.tsFloor != nil {
		if _, err := t.UpdateTimestamp(c.tsFloor); err != nil && t.Timestamp == nil {
			if t.Root.Signed.IsExpired(now) {
				return nil, false, &ExpiredError{Role: metadata.ROOT, Since: t.Root.Signed.Expires}
			}
			c.log.Warn().Err(err).Msg("trusted timestamp does not verify with the trusted root: dropped")
			c.tsFloor, c.snapFloor = nil, nil
		}
	}
	_, err = t.UpdateTimestamp(raw)
	switch {
	case err == nil:
		c.tsFloor = raw
		return raw, false, nil
	case errors.Is(err, &metadata.ErrEqualVersionNumber{}):
		if c.complete() {
			return nil, true, nil
		}
		if t.Timestamp.Signed.IsExpired(now) {
			return nil, false, &ExpiredError{Role: metadata.TIMESTAMP, Since: t.Timestamp.Signed.Expires}
		}
		return c.tsFloor, false, nil // the floor's generation is not complete yet
	case errors.Is(err, &metadata.ErrExpiredMetadata{}):
		if t.Root.Signed.IsExpired(now) {
			return nil, false, &ExpiredError{Role: metadata.ROOT, Since: t.Root.Signed.Expires}
		}
		return nil, false, &ExpiredError{Role: metadata.TIMESTAMP, Since: t.Timestamp.Signed.Expires}
	case errors.Is(err, &metadata.ErrBadVersionNumber{}):
		return nil, false, fmt.Errorf("%w: timestamp.json: %w", ErrRollback, err)
	}
	return nil, false, fmt.Errorf("tufclient: timestamp.json: %w", err)
}

// updateSnapshot loads the trusted snapshot as the floor and, unless it
// is the version the timestamp names, fetches and loads that one (5.5).
func (c *Client) updateSnapshot(ctx context.Context, get getFunc, t *trustedmetadata.TrustedMetadata, now time.Time) ([]byte, error) {
	meta := t.Timestamp.Signed.Meta[metadata.SNAPSHOT+".json"]
	if meta == nil {
		return nil, errors.New("tufclient: timestamp.json lists no snapshot")
	}
	if c.snapFloor != nil {
		if _, err := t.UpdateSnapshot(c.snapFloor, true); err != nil && t.Snapshot == nil {
			c.log.Warn().Err(err).Msg("trusted snapshot does not verify with the trusted root: dropped")
			c.snapFloor = nil
		}
	}
	if t.Snapshot != nil && t.Snapshot.Signed.Version == meta.Version && meta.VerifyLengthHashes(c.snapFloor) == nil {
		if t.Snapshot.Signed.IsExpired(now) {
			return nil, &ExpiredError{Role: metadata.SNAPSHOT, Since: t.Snapshot.Signed.Expires}
		}
		return c.snapFloor, nil
	}
	name := versioned(meta.Version, metadata.SNAPSHOT)
	raw, err := get(ctx, name, c.limit(meta.Length))
	if err != nil {
		return nil, fmt.Errorf("tufclient: %s: %w", name, err)
	}
	floor := t.Snapshot
	if _, err := t.UpdateSnapshot(raw, false); err != nil {
		switch {
		case errors.Is(err, &metadata.ErrExpiredMetadata{}) && t.Snapshot != floor:
			return nil, &ExpiredError{Role: metadata.SNAPSHOT, Since: t.Snapshot.Signed.Expires}
		case errors.Is(err, &metadata.ErrBadVersionNumber{}) && t.Snapshot == floor && floor != nil:
			return nil, fmt.Errorf("%w: %s: %w", ErrRollback, name, err)
		}
		return nil, fmt.Errorf("tufclient: %s: %w", name, err)
	}
	c.snapFloor = raw
	return raw, nil
}

// limit is the byte limit for a file whose delegating metadata gives
// length (0: not given).
func (c *Client) limit(length int64) int64 {
	if length > 0 && length < c.opt.MaxBytes {
		return length
	}
	return c.opt.MaxBytes
}
