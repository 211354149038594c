package admindoc

import (
	"time"

	"github.com/relayd/relayd/pkg/wire"
)

// Rollout is the /v1/rollout document (rollout.Status). On the origin it
// is the plan, the gates it signs and, per ring, how far the ring is from
// opening the next; on a relay it is the gates it holds (Plan empty,
// ReadOnly true).
type Rollout struct {
	// Plan is the rollout plan's name ("" on a relay).
	Plan string `json:"plan,omitempty"`
	// ReadOnly: this node follows gates signed elsewhere (a relay).
	ReadOnly bool `json:"read_only,omitempty"`
	// Gates are the gates in force (nil: none yet).
	Gates *wire.Gates `json:"gates,omitempty"`
	// Signed says which signed rollout.json carries them (zero when
	// unsigned: no rollout key).
	Signed SignedGates `json:"signed,omitzero"`
	// Rings is the state of each ring (the origin only).
	Rings []RolloutRing `json:"rings,omitempty"`
	// Problem is the rollout's last error (a signing or a generation that
	// failed; retried every second), cleared by the next signing.
	Problem string `json:"problem,omitempty"`
	// Halted and Reason repeat the gates' halt for a reader in a hurry.
	Halted bool   `json:"halted"`
	Reason string `json:"reason,omitempty"`
}

// SignedGates names one signed rollout.json.
type SignedGates struct {
	Version int64     `json:"version"`
	Expires time.Time `json:"expires,omitzero"`
}

// RolloutRing is one ring of the origin's plan and where it stands.
type RolloutRing struct {
	Name   string   `json:"name"`
	Groups []string `json:"groups"`
	// Open is the newest generation the ring's agents may install (0:
	// none yet), since Since.
	Open  uint64    `json:"open"`
	Since time.Time `json:"since,omitzero"`
	// Soak is how long the ring must meet its gate before the next ring
	// opens (Go duration).
	Soak string `json:"soak"`
	// Gate is the ring's condition; Counts what its agents reported of
	// the generation it is open at.
	Gate   RolloutGate   `json:"gate"`
	Counts RolloutCounts `json:"counts"`
	// Met says the gate holds now; MetSince since when it has held
	// without a break (zero: not met); NextOpens when the next ring
	// opens if it goes on holding (zero: not scheduled).
	Met       bool      `json:"met"`
	MetSince  time.Time `json:"met_since,omitzero"`
	NextOpens time.Time `json:"next_opens,omitzero"`
	// Why says what the ring waits for, in words.
	Why string `json:"why,omitempty"`
}

// RolloutGate is the condition a ring meets before the next ring opens.
type RolloutGate struct {
	// MinAgents is the fewest agents reporting.
	MinAgents int `json:"min_agents"`
	// Success is the least fraction of the reporting agents installed.
	Success float64 `json:"success"`
	// MaxFailures is the largest fraction of the reporting agents failed;
	// above it the rollout halts.
	MaxFailures float64 `json:"max_failures"`
}

// RolloutCounts are a ring's agents' outcomes for one generation.
type RolloutCounts struct {
	Generation uint64 `json:"generation"`
	// Reporting agents of the ring (known and reporting recently).
	Reporting int `json:"reporting"`
	// Installed: reporting agents that installed the generation or a
	// newer one; Failed: those whose newest report is a failure of it.
	Installed int `json:"installed"`
	Failed    int `json:"failed"`
	// TopReason is the commonest failure reason.
	TopReason string `json:"top_reason,omitempty"`
}
