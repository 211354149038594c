// The rollout's state and its transitions: pure functions of the state,
// the plan, the time and the agents' outcomes. No lock, no I/O: Engine
// (engine.go) adds both.
package rollout

import (
	"errors"
	"fmt"
	"time"

	"github.com/relayd/relayd/pkg/admindoc"
	"github.com/relayd/relayd/pkg/wire"
)

// Decisions the engine takes (the decision label of
// relayd_rollout_decisions_total).
const (
	// DecisionAdopt: the first generation the engine sees at start is
	// taken as installed everywhere (every ring opens at it).
	DecisionAdopt = "adopt"
	// DecisionGeneration: a new generation was published.
	DecisionGeneration = "generation"
	// DecisionOpen: a ring opened by itself (ring 0 on a new generation,
	// a later ring when the one before met its gate for its soak).
	DecisionOpen = "open"
	// DecisionPromote: a ring opened by hand.
	DecisionPromote = "promote"
	// DecisionHalt: failures above a ring's max_failures halted the
	// rollout.
	DecisionHalt = "halt"
	// DecisionManualHalt: an operator halted the rollout.
	DecisionManualHalt = "manual_halt"
	// DecisionResume: an operator resumed a halted rollout.
	DecisionResume = "resume"
	// DecisionPlan: the plan changed since the state was saved.
	DecisionPlan = "plan"
)

// Errors of the manual actions.
var (
	// ErrHalted: a promote of a halted rollout (resume first).
	ErrHalted = errors.New("rollout: the rollout is halted; resume it first")
	// ErrUnknownRing: no ring of the plan has that name.
	ErrUnknownRing = errors.New("rollout: no such ring")
	// ErrNoGeneration: nothing is published yet.
	ErrNoGeneration = errors.New("rollout: no generation published yet")
	// ErrBadReason: a halt reason longer than MaxReason bytes.
	ErrBadReason = fmt.Errorf("rollout: a halt reason is at most %d bytes", MaxReason)
	// ErrOlderGeneration: a generation older than the newest one.
	ErrOlderGeneration = errors.New("rollout: generation older than the newest")
)

// MaxReason bounds a halt reason, in bytes (as wire.Gates.Validate).
const MaxReason = 512

// Counts are what the agents of one ring reported of one generation
// (admindoc.RolloutCounts).
type Counts = admindoc.RolloutCounts

// Inputs is what the engine learns of the agents' outcomes.
type Inputs interface {
	// Ring returns what the agents of ring (its index in the plan, group
	// patterns as in wire.Gates.RingOf) reported of generation gen.
	Ring(ring int, gen uint64) Counts
}

// InputsFunc adapts a function to Inputs.
type InputsFunc func(ring int, gen uint64) Counts

// Ring calls f.
func (f InputsFunc) Ring(ring int, gen uint64) Counts { return f(ring, gen) }

// Decision is one step the engine took, with why.
type Decision struct {
	Kind       string `json:"kind"`
	Ring       string `json:"ring,omitempty"`
	Generation uint64 `json:"generation,omitempty"`
	Why        string `json:"why"`
}

// State is what the engine persists: enough that a restart neither
// reopens a ring nor forgets one.
type State struct {
	Plan   string      `json:"plan"`
	Newest wire.Pin    `json:"newest"`
	Halted bool        `json:"halted"`
	Reason string      `json:"reason,omitempty"`
	Rings  []RingState `json:"rings"`
}

// RingState is one ring's persisted state.
type RingState struct {
	Name string `json:"name"`
	// Open is the newest generation the ring's agents may install, since
	// Since.
	Open  wire.Pin  `json:"open"`
	Since time.Time `json:"since,omitzero"`
	// MetSince is since when the ring has met its gate for Open without
	// a break (zero: not met).
	MetSince time.Time `json:"met_since,omitzero"`
	// Acked is the failures of Open a resume acknowledged: only failures
	// beyond them count towards a halt.
	Acked int `json:"acked,omitempty"`
}

// clone returns a deep copy of s.
func (s *State) clone() State {
	c := *s
	c.Rings = append([]RingState(nil), s.Rings...)
	return c
}

// reconcile fits the state to the plan: rings are kept by name; a new
// ring starts where the widest ring of the state was; a ring ahead of
// the ring before it is held back to it (never an earlier ring moved
// forward).
func (s *State) reconcile(p *Plan) []Decision {
	var ds []Decision
	old := make(map[string]RingState, len(s.Rings))
	var widest wire.Pin
	for _, r := range s.Rings {
		old[r.Name] = r
		widest = r.Open
	}
	changed := s.Plan != p.Name || len(s.Rings) != len(p.Rings)
	rings := make([]RingState, len(p.Rings))
	for i, rp := range p.Rings {
		r, ok := old[rp.Name]
		if !ok {
			r = RingState{Name: rp.Name, Open: widest}
			changed = true
		} else if i >= len(s.Rings) || s.Rings[i].Name != rp.Name {
			changed = true
		}
		if i > 0 && r.Open.Version > rings[i-1].Open.Version {
			r.Open, r.MetSince = rings[i-1].Open, time.Time{}
			ds = append(ds, Decision{Kind: DecisionPlan, Ring: r.Name, Generation: r.Open.Version,
				Why: fmt.Sprintf("ring %q held back to generation %d: the ring before it in the new plan is there", r.Name, r.Open.Version)})
		}
		rings[i] = r
	}
	if changed && len(s.Rings) > 0 {
		ds = append([]Decision{{Kind: DecisionPlan, Why: fmt.Sprintf("plan %q with %d rings replaces plan %q with %d", p.Name, len(p.Rings), s.Plan, len(s.Rings))}}, ds...)
	}
	s.Plan, s.Rings = p.Name, rings
	return ds
}

// open opens ring i at the newest generation.
func (s *State) open(i int, now time.Time, kind, why string) Decision {
	r := &s.Rings[i]
	r.Open, r.Since, r.MetSince, r.Acked = s.Newest, now, time.Time{}, 0
	return Decision{Kind: kind, Ring: r.Name, Generation: s.Newest.Version, Why: why}
}

// adopt takes pin as installed everywhere: the first generation of an
// engine that starts on a tree published before it.
func (s *State) adopt(pin wire.Pin, now time.Time) []Decision {
	s.Newest = pin
	for i := range s.Rings {
		s.open(i, now, DecisionAdopt, "")
	}
	return []Decision{{Kind: DecisionAdopt, Generation: pin.Version,
		Why: fmt.Sprintf("no rollout state yet: generation %d, published before the plan, is taken as installed in every ring", pin.Version)}}
}

// newGeneration records a newly published generation; ring 0 opens at
// once unless the rollout is halted.
func (s *State) newGeneration(pin wire.Pin, now time.Time) ([]Decision, error) {
	switch {
	case pin.Version == s.Newest.Version && pin == s.Newest:
		return nil, nil
	case pin.Version <= s.Newest.Version:
		return nil, fmt.Errorf("%w: %d, the newest is %d", ErrOlderGeneration, pin.Version, s.Newest.Version)
	}
	s.Newest = pin
	ds := []Decision{{Kind: DecisionGeneration, Generation: pin.Version, Why: fmt.Sprintf("generation %d published", pin.Version)}}
	if s.Halted {
		ds[0].Why += "; the rollout is halted: no ring opens until it is resumed"
		return ds, nil
	}
	return append(ds, s.open(0, now, DecisionOpen, fmt.Sprintf("generation %d published: the first ring opens at once", pin.Version))), nil
}

// verdict is how one ring stands against its gate for a generation.
type verdict struct {
	met, failing bool
	failed       int // failures beyond those acknowledged
	why          string
}

// judge weighs a ring's counts against its gate.
func judge(g Gate, c Counts, acked int) verdict {
	v := verdict{failed: max(0, c.Failed-acked)}
	if c.Reporting > 0 && v.failed > 0 && float64(v.failed)/float64(c.Reporting) > g.MaxFailures {
		v.failing = true
		v.why = fmt.Sprintf("%d of %d reporting agents failed, above max_failures %.3g", v.failed, c.Reporting, g.MaxFailures)
		return v
	}
	switch {
	case c.Reporting < g.MinAgents:
		v.why = fmt.Sprintf("%d agents reporting, min_agents is %d", c.Reporting, g.MinAgents)
	case c.Reporting > 0 && float64(c.Installed)/float64(c.Reporting) < g.Success:
		v.why = fmt.Sprintf("%d of %d reporting agents installed, success is %.3g", c.Installed, c.Reporting, g.Success)
	default:
		v.met = true
		v.why = fmt.Sprintf("%d of %d reporting agents installed, %d failed", c.Installed, c.Reporting, v.failed)
	}
	return v
}

// tick weighs every ring open at the newest generation: failures above
// a ring's gate halt the rollout; a ring that met its gate for its soak
// opens the next one. A halted rollout opens nothing.
func (s *State) tick(p *Plan, now time.Time, in Inputs) []Decision {
	if s.Halted || s.Newest.Version == 0 {
		return nil
	}
	var ds []Decision
	if s.Rings[0].Open.Version < s.Newest.Version {
		ds = append(ds, s.open(0, now, DecisionOpen, fmt.Sprintf("generation %d is the newest: the first ring opens at once", s.Newest.Version)))
	}
	for i := range s.Rings {
		r := &s.Rings[i]
		if r.Open.Version != s.Newest.Version {
			r.MetSince = time.Time{}
			continue
		}
		rp := p.Rings[i]
		c := in.Ring(i, s.Newest.Version)
		v := judge(rp.Gate, c, r.Acked)
		if v.failing {
			s.Halted = true
			s.Reason = fmt.Sprintf("ring %q, generation %d: %s", r.Name, s.Newest.Version, v.why)
			if c.TopReason != "" {
				s.Reason += "; top reason: " + c.TopReason
			}
			s.Reason = truncate(s.Reason, MaxReason)
			return append(ds, Decision{Kind: DecisionHalt, Ring: r.Name, Generation: s.Newest.Version, Why: s.Reason})
		}
		if !v.met {
			r.MetSince = time.Time{}
			continue
		}
		if r.MetSince.IsZero() {
			r.MetSince = now
		}
		if i+1 < len(s.Rings) && s.Rings[i+1].Open.Version < s.Newest.Version && now.Sub(r.MetSince) >= rp.Soak {
			ds = append(ds, s.open(i+1, now, DecisionOpen, fmt.Sprintf("ring %q met its gate for %s (soak %s): %s", r.Name, now.Sub(r.MetSince), rp.Soak, v.why)))
		}
	}
	return ds
}

// promote opens ring name (the next ring to open when name is ""), and
// every ring before it not open yet, at the newest generation.
func (s *State) promote(name string, now time.Time) ([]Decision, error) {
	switch {
	case s.Halted:
		return nil, ErrHalted
	case s.Newest.Version == 0:
		return nil, ErrNoGeneration
	}
	target := -1
	for i, r := range s.Rings {
		if name == "" && r.Open.Version < s.Newest.Version {
			target = i
			break
		}
		if name != "" && r.Name == name {
			target = i
		}
	}
	if name != "" && target < 0 {
		return nil, fmt.Errorf("%w: %q", ErrUnknownRing, name)
	}
	var ds []Decision
	for i := 0; i <= target; i++ {
		if s.Rings[i].Open.Version < s.Newest.Version {
			ds = append(ds, s.open(i, now, DecisionPromote, fmt.Sprintf("promoted by hand to generation %d", s.Newest.Version)))
		}
	}
	return ds, nil
}

// halt stops the rollout by hand.
func (s *State) halt(reason string) ([]Decision, error) {
	if len(reason) > MaxReason {
		return nil, ErrBadReason
	}
	if reason == "" {
		reason = "halted by hand"
	}
	if s.Halted && s.Reason == reason {
		return nil, nil
	}
	s.Halted, s.Reason = true, reason
	return []Decision{{Kind: DecisionManualHalt, Generation: s.Newest.Version, Why: reason}}, nil
}

// resume lifts a halt. The failures the rings report now are
// acknowledged: only new ones count towards the next halt.
func (s *State) resume(in Inputs) []Decision {
	if !s.Halted {
		return nil
	}
	why := "resumed by hand after: " + s.Reason
	s.Halted, s.Reason = false, ""
	for i := range s.Rings {
		r := &s.Rings[i]
		r.MetSince = time.Time{}
		if r.Open.Version == s.Newest.Version && s.Newest.Version > 0 {
			r.Acked = in.Ring(i, s.Newest.Version).Failed
		}
	}
	return []Decision{{Kind: DecisionResume, Generation: s.Newest.Version, Why: truncate(why, MaxReason)}}
}

// gates is the signed document of the state.
func (s *State) gates(p *Plan) wire.Gates {
	g := wire.Gates{Plan: s.Plan, Newest: s.Newest, Halted: s.Halted, Reason: s.Reason, Rings: make([]wire.Ring, len(s.Rings))}
	for i, r := range s.Rings {
		g.Rings[i] = wire.Ring{Name: r.Name, Groups: p.Rings[i].Groups, Open: r.Open, Since: r.Since}
	}
	return g
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
