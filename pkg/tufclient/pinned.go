// Pinned generations (issue 15): a generation older than the newest,
// named by the rollout role's pin and verified through go-tuf's
// trustedmetadata with the pin standing for the timestamp.
package tufclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/wire"
)

// ErrPinMismatch: a snapshot's bytes are not those its pin names (length
// or sha256), or the pin itself is malformed.
var ErrPinMismatch = errors.New("tufclient: snapshot does not match its pin")

// maxPinned is how many pinned generations a client keeps verified in
// memory (rings open at different generations: a few at most).
const maxPinned = 4

// pinnedGen is one verified pinned generation.
type pinnedGen struct {
	pin wire.Pin
	cat *catalog.Catalog
}

// Pinned verifies and returns generation pin.Version, which may be older
// than the newest verified (a ring of a staged rollout open at it): its
// snapshot, fetched within pin.Length bytes, must be exactly the pinned
// bytes (the rollout role vouches for them, as the timestamp does for the
// newest), signed by the snapshot role's threshold of the trusted root
// and not expired; then top-level targets and every delegated role and
// bin are loaded through go-tuf's trustedmetadata with that snapshot,
// with the same checks and limits as Update. The pin of the newest
// verified generation returns its catalog; a pin newer than that is
// refused (Update first). Verified files are persisted in Options.Dir
// and the generation kept in memory: a repeat call fetches nothing.
// Roles the newest generation shares with the pinned one (same version)
// are taken from it without a fetch.
func (c *Client) Pinned(ctx context.Context, f Fetcher, pin wire.Pin) (*catalog.Catalog, error) {
	sum, err := checkPin(pin, c.opt.MaxBytes)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.set == nil {
		return nil, errors.New("tufclient: no generation verified yet: Update before Pinned")
	}
	newest := c.set.snap.Signed.Version
	switch v := int64(pin.Version); {
	case v > newest:
		return nil, fmt.Errorf("tufclient: pinned generation %d is newer than the newest verified (%d): Update first", v, newest)
	case v == newest:
		got := sha256.Sum256(c.set.snapRaw)
		if int64(len(c.set.snapRaw)) != pin.Length || !bytes.Equal(got[:], sum) {
			return nil, fmt.Errorf("%w: generation %d", ErrPinMismatch, v)
		}
		return c.set.catalog, nil
	}
	if i := slices.IndexFunc(c.pinned, func(p *pinnedGen) bool { return p.pin == pin }); i >= 0 {
		return c.pinned[i].cat, nil
	}
	now := c.opt.Now()
	p, err := c.verifyPinned(ctx, f, pin, sum, now)
	if err != nil {
		return nil, err
	}
	c.pinned = append(c.pinned, p)
	if len(c.pinned) > maxPinned {
		c.pinned = slices.Delete(c.pinned, 0, 1)
	}
	c.log.Debug().Uint64("generation", pin.Version).Int("objects", len(p.cat.Objects)).Msg("pinned generation verified")
	return p.cat, nil
}

// checkPin checks the shape of pin and returns its sha256.
func checkPin(pin wire.Pin, maxBytes int64) ([]byte, error) {
	sum, err := hex.DecodeString(pin.SHA256)
	switch {
	case pin.Version < 1 || pin.Version > 1<<62:
		return nil, fmt.Errorf("%w: version %d", ErrPinMismatch, pin.Version)
	case pin.Length < 1 || pin.Length > maxBytes:
		return nil, fmt.Errorf("%w: length %d (at most %d)", ErrPinMismatch, pin.Length, maxBytes)
	case err != nil || len(sum) != sha256.Size:
		return nil, fmt.Errorf("%w: sha256 %q", ErrPinMismatch, pin.SHA256)
	}
	return sum, nil
}

// verifyPinned loads generation pin through a trustedmetadata whose
// timestamp is the pin. Files kept in Dir are taken before f is asked.
func (c *Client) verifyPinned(ctx context.Context, f Fetcher, pin wire.Pin, sum []byte, now time.Time) (*pinnedGen, error) {
	t, err := trustedmetadata.New(c.rootRaw)
	if err != nil {
		return nil, fmt.Errorf("tufclient: trusted root: %w", err)
	}
	t.RefTime = now
	if t.Root.Signed.IsExpired(now) {
		return nil, &ExpiredError{Role: metadata.ROOT, Since: t.Root.Signed.Expires}
	}
	// The pin stands for timestamp.json: it names the snapshot by version,
	// length and hash. Its expiry is the gates' (VerifyGates), so this
	// stand-in only has to outlive the call.
	ts := metadata.Timestamp(now.Add(time.Hour))
	ts.Signed.Meta[metadata.SNAPSHOT+".json"] = &metadata.MetaFiles{Version: int64(pin.Version), Length: pin.Length, Hashes: metadata.Hashes{"sha256": sum}}
	t.Timestamp = ts
	files := map[string][]byte{} // fetched, stored once verified
	fetch := func(ctx context.Context, name string, max int64) ([]byte, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b, err := f.FetchMeta(ctx, name, max)
		if err == nil && int64(len(b)) > max {
			err = fmt.Errorf("%w: %s: more than %d bytes", &metadata.ErrDownloadLengthMismatch{Msg: "endless data"}, name, max)
		}
		if err == nil {
			files[name] = b
		}
		return b, err
	}
	get := func(ctx context.Context, name string, max int64) ([]byte, error) {
		if b, ok := c.readFile(name); ok && int64(len(b)) <= max {
			return b, nil // stored once verified; verified again below
		}
		return fetch(ctx, name, max)
	}
	name := versioned(int64(pin.Version), metadata.SNAPSHOT)
	snapRaw, ok := c.readFile(name)
	if !ok || ts.Signed.Meta[metadata.SNAPSHOT+".json"].VerifyLengthHashes(snapRaw) != nil {
		if snapRaw, err = fetch(ctx, name, pin.Length); err != nil {
			return nil, fmt.Errorf("tufclient: %s: %w", name, err)
		}
	}
	if _, err := t.UpdateSnapshot(snapRaw, false); err != nil {
		switch {
		case errors.Is(err, &metadata.ErrLengthOrHashMismatch{}):
			return nil, fmt.Errorf("%w: %s: %w", ErrPinMismatch, name, err)
		case errors.Is(err, &metadata.ErrExpiredMetadata{}) && t.Snapshot != nil:
			return nil, &ExpiredError{Role: metadata.SNAPSHOT, Since: t.Snapshot.Signed.Expires}
		}
		return nil, fmt.Errorf("tufclient: %s: %w", name, err)
	}
	var prev *trustedSet
	if c.set.root.Signed.Version == t.Root.Signed.Version {
		prev = c.set
	}
	roles, order, err := c.loadRoles(ctx, t, get, prev)
	if err != nil {
		return nil, err
	}
	cat, _, err := enumerate(roles, order, t.Snapshot.Signed.Version, prev)
	if err != nil {
		return nil, err
	}
	for fn, b := range files {
		if err := c.writeFile(fn, b); err != nil {
			return nil, err
		}
	}
	return &pinnedGen{pin: pin, cat: cat}, nil
}
