// The compliance of a subtree's agents (issue 15): pkg/compliance computes
// it, GET /v1/compliance serves it, `relayd compliance` shows it.
package admindoc

import (
	"time"

	"github.com/relayd/relayd/pkg/wire"
)

// Agent states, the values of the state label of the gauges.
const (
	StateOnTarget     = "on_target"
	StateBehind       = "behind"
	StateFailed       = "failed"
	StateNotReporting = "not_reporting"
)

// ComplianceStates lists the agent states in display order.
var ComplianceStates = []string{StateOnTarget, StateBehind, StateFailed, StateNotReporting}

// Compliance (GET /v1/compliance, pkg/compliance.Report) is the
// compliance of a subtree's agents: per group, per ring, and in all.
type Compliance struct {
	// Generated is when pkg/compliance.Compute ran (its now).
	Generated time.Time `json:"generated"`
	// Plan is the rollout plan's name; empty without gates.
	Plan string `json:"plan,omitempty"`
	// Halted and Reason repeat the gates' halt.
	Halted bool   `json:"halted,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Newest is the newest generation: the gates' Newest, or without
	// gates the newest any relay of the subtree holds.
	Newest uint64 `json:"newest"`
	// Total sums every group.
	Total ComplianceCounts `json:"total"`
	// Rings in the gates' order; none without gates.
	Rings []ComplianceRing `json:"rings,omitempty"`
	// Groups sorted by name.
	Groups []ComplianceGroup `json:"groups"`
}

// ComplianceCounts is how many agents are in each state, and the age of
// the oldest report among them. Reporting = Agents - NotReporting.
type ComplianceCounts struct {
	Agents       int `json:"agents"`
	Reporting    int `json:"reporting"`
	OnTarget     int `json:"on_target"`
	Behind       int `json:"behind"`
	Failed       int `json:"failed"`
	NotReporting int `json:"not_reporting"`
	// OldestReport is the oldest newest-report of an agent; zero when
	// none reported. OldestAgeSeconds is its age at Generated.
	OldestReport     time.Time `json:"oldest_report,omitzero"`
	OldestAgeSeconds int64     `json:"oldest_age_seconds,omitempty"`
	// Reasons are the commonest failure reasons of the failed agents,
	// at most wire.MaxOutcomeReasons.
	Reasons []wire.Reason `json:"reasons,omitempty"`
}

// Of returns the count of one state (ComplianceStates); 0 for an unknown one.
func (c *ComplianceCounts) Of(state string) int {
	switch state {
	case StateOnTarget:
		return c.OnTarget
	case StateBehind:
		return c.Behind
	case StateFailed:
		return c.Failed
	case StateNotReporting:
		return c.NotReporting
	}
	return 0
}

// ComplianceGroup is the compliance of the agents of one group's relays.
type ComplianceGroup struct {
	Name string `json:"name"`
	// Ring is the name of the group's ring; empty without gates.
	Ring string `json:"ring,omitempty"`
	// Target is the generation the group's agents should be on.
	Target uint64 `json:"target"`
	// Relays is how many relays of the group reported.
	Relays int `json:"relays"`
	ComplianceCounts
}

// ComplianceRing is the compliance of one ring's groups.
type ComplianceRing struct {
	Name string `json:"name"`
	// Open is the ring's open generation (its target); 0 before it opens.
	Open uint64 `json:"open"`
	// Since is when Open last moved.
	Since time.Time `json:"since,omitzero"`
	// Groups is how many groups of the subtree are in the ring.
	Groups int `json:"groups"`
	ComplianceCounts
}
