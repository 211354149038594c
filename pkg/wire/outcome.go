package wire

import (
	"fmt"
	"time"
)

// What agents report of a generation (issue 15), and how a relay sums it
// up for its parents: by counts, never by agent, so a report's size grows
// with the relays of a subtree, not with its agents.
const (
	// OutcomePath takes an agent's POST of its Outcome.
	OutcomePath = "/-/outcome"
	// MaxOutcomeSize caps an Outcome body, in bytes.
	MaxOutcomeSize = 2 << 10
	// MaxOutcomeReason bounds Outcome.Reason, in bytes.
	MaxOutcomeReason = 200
	// MaxOutcomeGenerations is how many generations Outcomes keeps.
	MaxOutcomeGenerations = 4
	// MaxOutcomeReasons is how many failure reasons a GenOutcome keeps.
	MaxOutcomeReasons = 5
)

// Outcome states.
const (
	OutcomeDownloaded = "downloaded"
	OutcomeInstalled  = "installed"
	OutcomeFailed     = "failed"
)

// Outcome is one agent's report of what became of a generation.
type Outcome struct {
	Agent      string `json:"agent"`
	Group      string `json:"group,omitempty"`
	Generation uint64 `json:"generation"`
	State      string `json:"state"`
	Reason     string `json:"reason,omitempty"`
}

// Validate checks an Outcome's fields and bounds.
func (o *Outcome) Validate() error {
	switch {
	case o.Agent == "" || len(o.Agent) > 128:
		return fmt.Errorf("outcome: agent id must be 1 to 128 bytes")
	case len(o.Group) > MaxNameLen:
		return fmt.Errorf("outcome: group longer than %d bytes", MaxNameLen)
	case o.Generation == 0:
		return fmt.Errorf("outcome: generation is required")
	case o.State != OutcomeDownloaded && o.State != OutcomeInstalled && o.State != OutcomeFailed:
		return fmt.Errorf("outcome: state %q is not downloaded, installed or failed", Printable(o.State, 32))
	case len(o.Reason) > MaxOutcomeReason:
		return fmt.Errorf("outcome: reason longer than %d bytes", MaxOutcomeReason)
	}
	return nil
}

// Outcomes sums up the outcomes of one relay's own agents (its children
// report theirs).
type Outcomes struct {
	// Agents is how many agents the relay knows: reported, or holding an
	// event stream.
	Agents int `json:"agents"`
	// Generations, newest first, at most MaxOutcomeGenerations; an agent
	// counts once, under the generation of its newest report.
	Generations []GenOutcome `json:"generations,omitempty"`
	// Oldest is the oldest newest-report among the agents that reported.
	Oldest time.Time `json:"oldest,omitzero"`
}

// GenOutcome counts the agents whose newest report is of one generation.
type GenOutcome struct {
	Generation uint64 `json:"generation"`
	Downloaded int    `json:"downloaded"`
	Installed  int    `json:"installed"`
	Failed     int    `json:"failed"`
	// Reasons are the commonest failure reasons, at most
	// MaxOutcomeReasons.
	Reasons []Reason `json:"reasons,omitempty"`
}

// Reason is a failure reason and how many agents gave it.
type Reason struct {
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}

// Validate checks the bounds of a relay's outcome summary: at most
// MaxOutcomeGenerations generations, MaxOutcomeReasons reasons each of at
// most MaxOutcomeReason bytes, no negative count.
func (o *Outcomes) Validate() error {
	switch {
	case o.Agents < 0:
		return fmt.Errorf("outcomes: negative agent count")
	case len(o.Generations) > MaxOutcomeGenerations:
		return fmt.Errorf("outcomes: more than %d generations", MaxOutcomeGenerations)
	}
	for _, g := range o.Generations {
		switch {
		case g.Downloaded < 0 || g.Installed < 0 || g.Failed < 0:
			return fmt.Errorf("outcomes: generation %d: negative count", g.Generation)
		case len(g.Reasons) > MaxOutcomeReasons:
			return fmt.Errorf("outcomes: generation %d: more than %d reasons", g.Generation, MaxOutcomeReasons)
		}
		for _, r := range g.Reasons {
			if len(r.Reason) > MaxOutcomeReason || r.Count < 0 {
				return fmt.Errorf("outcomes: generation %d: a reason longer than %d bytes or a negative count", g.Generation, MaxOutcomeReason)
			}
		}
	}
	return nil
}
