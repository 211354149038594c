// The demo's TUF repository: keys per role, the two team delegations,
// publishing, and the origin re-signing the timestamp.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Roles of the demo repository: the four top-level ones and two teams.
var (
	topRoles = []string{"root", "targets", "snapshot", "timestamp"}
	// teams delegate by path: each signs its own objects and nothing else.
	teams = []struct{ role, paths string }{{"security", "security/**"}, {"software", "software/**"}}
)

// timestampExpiry is what the demo's origin signs timestamps for: short,
// so that the demo sees it re-sign one (at half the expiry).
const timestampExpiry = 2 * time.Minute

// repo is the demo's TUF repository: its keys and the root every relay
// and agent is installed with.
type repo struct {
	tree, keys, root string
}

// initRepo makes a key per role and the repository, publishes the tree
// and delegates to both teams.
func (d *demo) initRepo(tree string) (*repo, error) {
	r := &repo{tree: tree, keys: filepath.Join(d.work, "keys")}
	for _, role := range append(append([]string{}, topRoles...), teams[0].role, teams[1].role) {
		if err := d.cli("keygen", "--role", role, "--out", r.keys); err != nil {
			return nil, err
		}
	}
	if err := d.cli("tuf", "init", tree, "--keys", r.keys); err != nil {
		return nil, err
	}
	// A delegation moves what is published under its paths: publish
	// first. Each one is a generation; the last is the one relays start
	// from.
	if err := r.publish(d); err != nil {
		return nil, err
	}
	for _, t := range teams {
		if err := d.cli("tuf", "delegate", tree, "--role", t.role, "--paths", t.paths,
			"--key", filepath.Join(r.keys, t.role+".pub"), "--keys", r.keys, "--timestamp-expiry", timestampExpiry.String()); err != nil {
			return nil, err
		}
	}
	r.root = filepath.Join(tree, "-", "tuf", "1.root.json")
	fmt.Printf("TUF repository in %s/-/tuf: keys for %v; targets delegates %s → %s and %s → %s (each signed by its team's key)\n",
		filepath.Base(tree), append(append([]string{}, topRoles...), teams[0].role, teams[1].role),
		teams[0].paths, teams[0].role, teams[1].paths, teams[1].role)
	fmt.Printf("relays and agents trust %s (--root); the origin re-signs timestamp.json (expiry %s)\n\n", r.root, timestampExpiry)
	return r, nil
}

// publish signs the tree as it is now: a new generation if it changed.
func (r *repo) publish(d *demo) error {
	return d.cli("publish", r.tree, "--keys", r.keys, "--timestamp-expiry", timestampExpiry.String())
}

// generation is the snapshot version the tree's timestamp names.
func (r *repo) generation() (uint64, error) {
	b, err := os.ReadFile(filepath.Join(r.tree, "-", "tuf", "timestamp.json"))
	if err != nil {
		return 0, err
	}
	ts, err := parseTimestamp(b)
	return uint64(ts.Snapshot), err
}

// originArgs are the flags of an origin that re-signs the timestamp.
func (r *repo) originArgs() []string {
	return []string{"--root", r.tree, "--timestamp-key", filepath.Join(r.keys, "timestamp.key"),
		"--timestamp-expiry", timestampExpiry.String()}
}

// timestampInfo is what the demo reads of a served timestamp.json.
type timestampInfo struct {
	Version  int64
	Expires  time.Time
	Snapshot int64
}

// servedTimestamp reads the timestamp base serves.
func servedTimestamp(ctx context.Context, base string) (timestampInfo, error) {
	b, err := getBody(ctx, base+"/-/tuf/timestamp.json")
	if err != nil {
		return timestampInfo{}, err
	}
	return parseTimestamp([]byte(b))
}

// parseTimestamp reads what the demo shows of a timestamp.json.
func parseTimestamp(b []byte) (timestampInfo, error) {
	var doc struct {
		Signed struct {
			Version int64     `json:"version"`
			Expires time.Time `json:"expires"`
			Meta    map[string]struct {
				Version int64 `json:"version"`
			} `json:"meta"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return timestampInfo{}, fmt.Errorf("timestamp.json: %w", err)
	}
	return timestampInfo{doc.Signed.Version, doc.Signed.Expires, doc.Signed.Meta["snapshot.json"].Version}, nil
}

// waitResign waits until the origin serves a timestamp newer than the one
// it serves now for the same snapshot (a re-sign, not a publish) and says
// so.
func (d *demo) waitResign(origin *relay) error {
	before, err := servedTimestamp(d.ctx, origin.url())
	if err != nil {
		return err
	}
	fmt.Printf("\nthe origin serves timestamp.json version %d (snapshot %d), expiring %s; it re-signs it when less than half of %s is left …\n",
		before.Version, before.Snapshot, before.Expires.Local().Format("15:04:05"), timestampExpiry)
	var after timestampInfo
	if err := d.waitFor(timestampExpiry, "the origin to re-sign timestamp.json", func() bool {
		ts, err := servedTimestamp(d.ctx, origin.url())
		after = ts
		return err == nil && ts.Version > before.Version
	}); err != nil {
		return err
	}
	fmt.Printf("re-signed by the origin: timestamp.json version %d → %d, snapshot %d → %d (same generation), now expiring %s\n",
		before.Version, after.Version, before.Snapshot, after.Snapshot, after.Expires.Local().Format("15:04:05"))
	return nil
}
