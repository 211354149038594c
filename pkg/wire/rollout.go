package wire

import (
	"errors"
	"fmt"
	"path"
	"time"
)

// Staged rollouts (issue 15): the gates the origin signs with the tree's
// rollout role, and what agents report of their installs. The signed
// envelope (a TUF metadata file served as GatesName under TUFPrefix) is
// pkg/tufrepo's and pkg/tufclient's business; this is the document inside.
const (
	// GatesName is the served name of the signed gates: /-/tuf/rollout.json.
	// Like timestamp.json it changes in place (Cache-Control: no-cache).
	GatesName = "rollout.json"
	// RolloutRole is the top-level TUF role (in root.json, beside root,
	// targets, snapshot and timestamp) that signs GatesName.
	RolloutRole = "rollout"
	// GatesField is the field of the signed metadata that holds Gates.
	GatesField = "relayd_rollout"
	// KindGates is the event of EventsPath that announces new gates
	// (data: GatesEvent).
	KindGates = "gates"
	// MaxGatesSize caps the signed gates file a reader takes, in bytes.
	MaxGatesSize = 256 << 10
	// MaxRings is the most rings a plan has.
	MaxRings = 16
	// MaxRingPatterns is the most group patterns of one ring.
	MaxRingPatterns = 256
	// maxRingName bounds a ring name and a group pattern, in bytes.
	maxRingName = 64
	// maxReason bounds the reason of a halt, in bytes.
	maxReason = 512
)

// ErrBadGates: a gates document breaks its own rules.
var ErrBadGates = errors.New("bad rollout gates")

// Pin names one generation by its snapshot file, "<Version>.snapshot.json":
// its byte length and sha256 (hex). The rollout role vouches for it, so an
// agent can verify a generation older than the newest.
type Pin struct {
	Version uint64 `json:"version"`
	Length  int64  `json:"length"`
	SHA256  string `json:"sha256"`
}

// Gates is the signed state of a rollout: which generation each ring's
// agents may install.
type Gates struct {
	// Plan is the rollout plan's name.
	Plan string `json:"plan"`
	// Newest is the newest generation published.
	Newest Pin `json:"newest"`
	// Halted stops the rollout: no ring opens further until resumed;
	// Reason says why.
	Halted bool   `json:"halted"`
	Reason string `json:"reason,omitempty"`
	// Rings in order: ring 0 (canaries) opens first.
	Rings []Ring `json:"rings"`
}

// Ring is one stage of a rollout.
type Ring struct {
	Name string `json:"name"`
	// Groups are path.Match patterns on group names ("branch-*").
	Groups []string `json:"groups"`
	// Open is the newest generation this ring's agents may install
	// (Version 0: none yet).
	Open Pin `json:"open"`
	// Since is when Open last moved.
	Since time.Time `json:"since,omitzero"`
}

// GatesEvent is the data of a KindGates event.
type GatesEvent struct {
	Version int64 `json:"version"`
}

// RingOf returns the index of the ring group belongs to: the first ring
// with a pattern that matches it. A group no ring names, and an agent that
// does not know its group, belong to the last ring (the widest, opened
// last). -1 only when there are no rings.
func (g *Gates) RingOf(group string) int {
	if len(g.Rings) == 0 {
		return -1
	}
	if group != "" {
		for i, r := range g.Rings {
			for _, p := range r.Groups {
				if ok, _ := path.Match(p, group); ok {
					return i
				}
			}
		}
	}
	return len(g.Rings) - 1
}

// Validate checks the bounds and the order of the gates: a later ring is
// never ahead of an earlier one, and no ring is ahead of the newest
// generation.
func (g *Gates) Validate() error {
	switch {
	case len(g.Rings) == 0:
		return fmt.Errorf("%w: no rings", ErrBadGates)
	case len(g.Rings) > MaxRings:
		return fmt.Errorf("%w: more than %d rings", ErrBadGates, MaxRings)
	case len(g.Plan) > maxRingName:
		return fmt.Errorf("%w: plan name longer than %d bytes", ErrBadGates, maxRingName)
	case len(g.Reason) > maxReason:
		return fmt.Errorf("%w: reason longer than %d bytes", ErrBadGates, maxReason)
	}
	seen := make(map[string]bool, len(g.Rings))
	for i, r := range g.Rings {
		if err := r.validate(); err != nil {
			return fmt.Errorf("%w: ring %d: %w", ErrBadGates, i, err)
		}
		if seen[r.Name] {
			return fmt.Errorf("%w: ring %q named twice", ErrBadGates, r.Name)
		}
		seen[r.Name] = true
		if r.Open.Version > g.Newest.Version {
			return fmt.Errorf("%w: ring %q open at generation %d, newer than the newest (%d)", ErrBadGates, r.Name, r.Open.Version, g.Newest.Version)
		}
		if i > 0 && r.Open.Version > g.Rings[i-1].Open.Version {
			return fmt.Errorf("%w: ring %q is ahead of ring %q", ErrBadGates, r.Name, g.Rings[i-1].Name)
		}
	}
	return nil
}

func (r Ring) validate() error {
	switch {
	case r.Name == "" || len(r.Name) > maxRingName:
		return fmt.Errorf("name must be 1 to %d bytes", maxRingName)
	case len(r.Groups) > MaxRingPatterns:
		return fmt.Errorf("more than %d group patterns", MaxRingPatterns)
	case r.Open.Version > 0 && (r.Open.Length <= 0 || len(r.Open.SHA256) != 64):
		return errors.New("an open generation needs its snapshot's length and sha256")
	}
	for _, p := range r.Groups {
		if p == "" || len(p) > maxRingName {
			return fmt.Errorf("group pattern must be 1 to %d bytes", maxRingName)
		}
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("group pattern %q: %w", p, err)
		}
	}
	return nil
}
