package tufrepo

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/internal/atomicfile"
)

// RefreshTimestamp re-signs tree's timestamp.json (version+1, the same
// snapshot with its length and sha256, expiring after expiry) when less than half its lifetime is
// left at now, and says whether it did. The origin calls it on a
// schedule with its online timestamp key.
func RefreshTimestamp(tree string, ring *KeyRing, expiry time.Duration, now time.Time) (bool, error) {
	return refreshTimestamp(tree, ring, expiry, now, false)
}

// ResignTimestamp re-signs tree's timestamp.json whatever its expiry
// (relayd publish --timestamp-only).
func ResignTimestamp(tree string, ring *KeyRing, expiry time.Duration, now time.Time) error {
	_, err := refreshTimestamp(tree, ring, expiry, now, true)
	return err
}

func refreshTimestamp(tree string, ring *KeyRing, expiry time.Duration, now time.Time, force bool) (bool, error) {
	if expiry <= 0 {
		expiry = DefaultExpiries().Timestamp
	}
	s, unlock, err := openLocked(tree)
	if err != nil {
		return false, err
	}
	defer unlock()
	if s.timestamp == nil {
		return false, fmt.Errorf("tufrepo: %s has no %s yet: publish first", tree, TimestampFile)
	}
	now = now.UTC().Truncate(time.Second)
	if !force && !s.stale[metadata.TIMESTAMP] && s.timestamp.Signed.Expires.Sub(now) >= expiry/2 {
		return false, nil
	}
	e := rootEntry(s.root, metadata.TIMESTAMP)
	ts := metadata.Timestamp(now.Add(expiry))
	ts.Signed.Version = s.timestamp.Signed.Version + 1
	sv := s.timestamp.Signed.Meta["snapshot.json"].Version
	snapRaw, err := readBounded(filepath.Join(s.dir, fileName(sv, metadata.SNAPSHOT)))
	if err != nil {
		return false, err
	}
	ts.Signed.Meta["snapshot.json"] = snapshotMetaFile(sv, snapRaw)
	data, n, err := signWith(ring, ts, e.keyIDs)
	if err != nil {
		return false, err
	}
	if n < e.threshold {
		return false, fmt.Errorf("tufrepo: the timestamp needs %d signature(s) of keys %v; the ring holds %d", e.threshold, e.keyIDs, n)
	}
	if err := s.root.VerifyDelegate(metadata.TIMESTAMP, ts); err != nil {
		return false, fmt.Errorf("tufrepo: the new timestamp does not verify: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(s.dir, TimestampFile), data, 0o644); err != nil {
		return false, fmt.Errorf("tufrepo: write %s: %w", TimestampFile, err)
	}
	return true, nil
}
