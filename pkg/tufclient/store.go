// Persistence: the verified raw files in Options.Dir under their served
// names, written atomically after verification only. timestamp.json is
// written last: it is the commit point New starts from. Every root is
// kept; of the other files, those of the last three generations.
package tufclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/relayd/relayd/internal/atomicfile"
)

// writeFile stores a verified file (no-op without Dir).
func (c *Client) writeFile(name string, b []byte) error {
	if c.opt.Dir == "" {
		return nil
	}
	if !servedName.MatchString(name) {
		return fmt.Errorf("tufclient: refusing to store %q", name)
	}
	if err := atomicfile.WriteFile(filepath.Join(c.opt.Dir, name), b, 0o600); err != nil {
		return fmt.Errorf("tufclient: store %s: %w", name, err)
	}
	return nil
}

// readFile reads a stored file by served name, within MaxBytes.
func (c *Client) readFile(name string) ([]byte, bool) {
	if c.opt.Dir == "" || !servedName.MatchString(name) {
		return nil, false
	}
	p := filepath.Join(c.opt.Dir, name)
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > c.opt.MaxBytes {
		return nil, false
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, false
	}
	return b, true
}

func (c *Client) removeFile(name string) {
	if c.opt.Dir == "" {
		return
	}
	if err := os.Remove(filepath.Join(c.opt.Dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.log.Warn().Err(err).Str("file", name).Msg("remove stored metadata")
	}
}

// persist stores the files of set that Dir does not have yet (versioned
// names are immutable), then timestamp.json, then prunes.
func (c *Client) persist(set *trustedSet) error {
	if c.opt.Dir == "" {
		return nil
	}
	files := set.files()
	names := make([]string, 0, len(files))
	for name := range files {
		if name != "timestamp.json" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		if fi, err := os.Stat(filepath.Join(c.opt.Dir, name)); err == nil && fi.Size() == int64(len(files[name])) {
			continue
		}
		if err := c.writeFile(name, files[name]); err != nil {
			return err
		}
	}
	if err := c.writeFile("timestamp.json", set.tsRaw); err != nil {
		return err
	}
	c.prune()
	return nil
}

// prune removes the snapshots older than the last keepGenerations in Dir
// but those some held gate opens a ring at or Pinned verified, and every
// targets or delegated role file none of those lists. Roots stay. Failures are logged: a file too many is harmless.
func (c *Client) prune() {
	entries, err := os.ReadDir(c.opt.Dir)
	if err != nil {
		c.log.Warn().Err(err).Msg("prune stored metadata")
		return
	}
	var snaps []int64
	var others []string
	for _, e := range entries {
		name := e.Name()
		if !servedName.MatchString(name) || name == "timestamp.json" || isRoot(name) {
			continue
		}
		v, role, _ := strings.Cut(strings.TrimSuffix(name, ".json"), ".")
		if role == metadata.SNAPSHOT {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				snaps = append(snaps, n)
			}
			continue
		}
		others = append(others, name)
	}
	slices.Sort(snaps)
	keep := map[string]bool{}
	held := c.heldVersions()
	for i, v := range snaps {
		name := versioned(v, metadata.SNAPSHOT)
		if i < len(snaps)-keepGenerations && !slices.Contains(held, v) {
			c.removeFile(name)
			continue
		}
		if err := c.listed(name, keep); err != nil {
			c.log.Warn().Err(err).Str("file", name).Msg("prune: stored snapshot unreadable; keeping every role file")
			return
		}
	}
	for _, name := range others {
		if !keep[name] {
			c.removeFile(name)
		}
	}
}

// listed adds to keep the served names of the role files the stored
// snapshot name lists.
func (c *Client) listed(name string, keep map[string]bool) error {
	b, ok := c.readFile(name)
	if !ok {
		return errors.New("not readable")
	}
	var snap struct {
		Signed struct {
			Meta map[string]struct {
				Version int64 `json:"version"`
			} `json:"meta"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(b, &snap); err != nil {
		return err
	}
	for file, m := range snap.Signed.Meta {
		keep[versioned(m.Version, strings.TrimSuffix(file, ".json"))] = true
	}
	return nil
}

// load makes trustedRoot the trusted root, then takes from Dir what
// verifies from it: newer roots, and the last complete generation. Local
// files are verified (signatures, thresholds, versions, hashes) but not
// for expiry: they are the rollback floor and what a relay serves while
// it cannot update, and State.Expires says whether they expired.
func (c *Client) load(trustedRoot []byte) error {
	if m := c.opt.Memo; m != nil && c.opt.Dir == "" {
		if root := m.trustedRoot(trustedRoot); root != nil { // nothing on disk: the root is all there is
			c.root, c.rootRaw = root, trustedRoot
			c.rootNow.Store(root)
			c.addRoot(root.Signed.Version, trustedRoot)
			return nil
		}
		defer func() {
			if c.root != nil && c.root.Signed.ConsistentSnapshot && bytes.Equal(c.rootRaw, trustedRoot) {
				m.keepRoot(trustedRoot, c.root)
			}
		}()
	}
	t, err := trustedmetadata.New(trustedRoot)
	if err != nil {
		return fmt.Errorf("tufclient: trusted root: %w", err)
	}
	t.RefTime = time.Time{}
	if c.opt.Dir != "" {
		if err := os.MkdirAll(c.opt.Dir, 0o700); err != nil {
			return fmt.Errorf("tufclient: %w", err)
		}
	}
	c.root, c.rootRaw = t.Root, trustedRoot
	c.rootNow.Store(t.Root)
	first := rootFile(t.Root.Signed.Version)
	if _, ok := c.readFile(first); !ok {
		if err := c.writeFile(first, trustedRoot); err != nil {
			return err
		}
	}
	for v := t.Root.Signed.Version; ; v++ {
		if v > t.Root.Signed.Version {
			raw, ok := c.readFile(rootFile(v))
			if !ok {
				break
			}
			if _, err := t.UpdateRoot(raw); err != nil {
				c.log.Warn().Err(err).Str("file", rootFile(v)).Msg("stored root does not verify: ignored with its successors")
				break
			}
			c.root, c.rootRaw = t.Root, raw
			c.rootNow.Store(t.Root)
		}
		c.addRoot(v, c.rootRaw)
	}
	if !t.Root.Signed.ConsistentSnapshot {
		return errors.New("tufclient: the trusted root does not use consistent snapshots (relayd serves only versioned metadata names)")
	}
	if err := c.loadLocalSet(t); err != nil {
		c.log.Warn().Err(err).Msg("stored metadata not usable: starting from the trusted root")
	}
	c.loadGates()
	return nil
}

// loadLocalSet loads the stored generation timestamp.json names.
func (c *Client) loadLocalSet(t *trustedmetadata.TrustedMetadata) error {
	tsRaw, ok := c.readFile("timestamp.json")
	if !ok {
		return nil
	}
	if _, err := t.UpdateTimestamp(tsRaw); err != nil {
		return fmt.Errorf("timestamp.json: %w", err)
	}
	c.tsFloor = tsRaw
	meta := t.Timestamp.Signed.Meta[metadata.SNAPSHOT+".json"]
	if meta == nil {
		return errors.New("timestamp.json lists no snapshot")
	}
	name := versioned(meta.Version, metadata.SNAPSHOT)
	snapRaw, ok := c.readFile(name)
	if !ok {
		return fmt.Errorf("%s missing", name)
	}
	if _, err := t.UpdateSnapshot(snapRaw, false); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	c.snapFloor = snapRaw
	local := func(_ context.Context, name string, _ int64) ([]byte, error) {
		if b, ok := c.readFile(name); ok {
			return b, nil
		}
		return nil, fmt.Errorf("%w: %s not stored", ErrNotFound, name)
	}
	roles, order, err := c.loadRoles(context.Background(), t, local, nil)
	if err != nil {
		return err
	}
	set := &trustedSet{root: t.Root, ts: t.Timestamp, tsRaw: tsRaw, snap: t.Snapshot, snapRaw: snapRaw, roles: roles, order: order}
	if set.catalog, set.srcs, err = enumerate(roles, order, t.Snapshot.Signed.Version, nil); err != nil {
		return err
	}
	verified := time.Time{}
	if fi, err := os.Stat(filepath.Join(c.opt.Dir, "timestamp.json")); err == nil {
		verified = fi.ModTime()
	}
	c.set = set
	c.cur.Store(set.state(verified))
	c.setFiles(set.files())
	return nil
}
