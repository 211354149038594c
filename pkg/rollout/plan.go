// The rollout plan: the rings of groups a new generation goes through,
// their soak times and gate conditions, read from the origin's YAML file
// (--rollout-plan).
package rollout

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/relayd/relayd/pkg/admindoc"
	"github.com/relayd/relayd/pkg/wire"
)

// MaxPlanSize bounds a plan file, in bytes.
const MaxPlanSize = 64 << 10

// maxName bounds a plan, ring name or group pattern, in bytes (as
// wire.Gates.Validate).
const maxName = 64

// ErrBadPlan: a plan file breaks the rules of the format.
var ErrBadPlan = errors.New("rollout plan")

// Gate is the condition a ring meets, continuously for its soak, before
// the next ring opens (admindoc.RolloutGate).
type Gate = admindoc.RolloutGate

// DefaultGate is the gate of a plan that names none: at least one agent
// reporting, 95% installed, at most 2% failed.
var DefaultGate = Gate{MinAgents: 1, Success: 0.95, MaxFailures: 0.02}

// Plan is a parsed rollout plan.
type Plan struct {
	// Name names the plan in the gates (wire.Gates.Plan).
	Name string
	// Rings in order: ring 0 (canaries) opens at once, each next one when
	// the one before it met its gate for its soak.
	Rings []RingPlan
}

// RingPlan is one ring of a plan.
type RingPlan struct {
	Name string
	// Groups are path.Match patterns on group names.
	Groups []string
	// Soak is how long the ring must meet its gate, without a break,
	// before the next ring opens. Default 0 (at once).
	Soak time.Duration
	// Gate is the plan's gate with this ring's overrides.
	Gate Gate
}

// LoadPlan reads and parses the plan file at name.
func LoadPlan(name string) (*Plan, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPlan, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxPlanSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrBadPlan, name, err)
	}
	p, err := ParsePlan(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

// rawGate is a gate as written: absent fields inherit.
type rawGate struct {
	MinAgents   *int     `yaml:"min_agents"`
	Success     *float64 `yaml:"success"`
	MaxFailures *float64 `yaml:"max_failures"`
}

type rawRing struct {
	Name   string    `yaml:"name"`
	Groups []string  `yaml:"groups"`
	Soak   string    `yaml:"soak"`
	Gate   yaml.Node `yaml:"gate"`
}

var (
	planFields = []string{"name", "rings", "gate"}
	ringFields = []string{"name", "groups", "soak", "gate"}
	gateFields = []string{"min_agents", "success", "max_failures"}
)

// ParsePlan parses a plan (YAML, at most MaxPlanSize bytes). Errors name
// the line and the field.
func ParsePlan(b []byte) (*Plan, error) {
	if len(b) > MaxPlanSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadPlan, MaxPlanSize)
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the file is empty", ErrBadPlan)
		}
		return nil, fmt.Errorf("%w: %w", ErrBadPlan, err)
	}
	top := doc.Content[0]
	if err := checkFields(top, "the plan", planFields); err != nil {
		return nil, err
	}
	var raw struct {
		Name  string      `yaml:"name"`
		Rings []yaml.Node `yaml:"rings"`
		Gate  yaml.Node   `yaml:"gate"`
	}
	if err := top.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPlan, err)
	}
	p := &Plan{Name: raw.Name}
	if p.Name == "" || len(p.Name) > maxName {
		return nil, fmt.Errorf("%w: line %d: name: want 1 to %d bytes", ErrBadPlan, top.Line, maxName)
	}
	base, err := parseGate(&raw.Gate, DefaultGate)
	if err != nil {
		return nil, err
	}
	switch {
	case len(raw.Rings) == 0:
		return nil, fmt.Errorf("%w: line %d: rings: the plan has none", ErrBadPlan, top.Line)
	case len(raw.Rings) > wire.MaxRings:
		return nil, fmt.Errorf("%w: line %d: rings: more than %d", ErrBadPlan, raw.Rings[wire.MaxRings].Line, wire.MaxRings)
	}
	seen := map[string]int{}
	for i := range raw.Rings {
		r, err := parseRing(&raw.Rings[i], base)
		if err != nil {
			return nil, err
		}
		if l, dup := seen[r.Name]; dup {
			return nil, fmt.Errorf("%w: line %d: ring %q is already named at line %d", ErrBadPlan, raw.Rings[i].Line, r.Name, l)
		}
		seen[r.Name] = raw.Rings[i].Line
		p.Rings = append(p.Rings, r)
	}
	return p, nil
}

// parseRing parses one ring of the rings list.
func parseRing(n *yaml.Node, base Gate) (RingPlan, error) {
	if err := checkFields(n, "a ring", ringFields); err != nil {
		return RingPlan{}, err
	}
	var raw rawRing
	if err := n.Decode(&raw); err != nil {
		return RingPlan{}, fmt.Errorf("%w: %w", ErrBadPlan, err)
	}
	at := func(format string, a ...any) error {
		return fmt.Errorf("%w: line %d: ring %q: %s", ErrBadPlan, n.Line, raw.Name, fmt.Sprintf(format, a...))
	}
	r := RingPlan{Name: raw.Name, Groups: raw.Groups}
	switch {
	case r.Name == "" || len(r.Name) > maxName:
		return r, at("name: want 1 to %d bytes", maxName)
	case len(r.Groups) == 0:
		return r, at("groups: give at least one group name or pattern (\"*\" for every group)")
	case len(r.Groups) > wire.MaxRingPatterns:
		return r, at("groups: more than %d", wire.MaxRingPatterns)
	}
	for _, g := range r.Groups {
		if g == "" || len(g) > maxName {
			return r, at("groups: %q: want 1 to %d bytes", g, maxName)
		}
		if _, err := path.Match(g, ""); err != nil {
			return r, at("groups: %q is not a pattern: %v", g, err)
		}
	}
	if raw.Soak != "" {
		d, err := time.ParseDuration(raw.Soak)
		if err != nil || d < 0 {
			return r, at("soak: %q: want a duration of 0 or more (10m, 1h)", raw.Soak)
		}
		r.Soak = d
	}
	g, err := parseGate(&raw.Gate, base)
	if err != nil {
		return r, err
	}
	r.Gate = g
	return r, nil
}

// parseGate reads a gate node (absent: zero Kind) over base.
func parseGate(n *yaml.Node, base Gate) (Gate, error) {
	if n.Kind == 0 {
		return base, nil
	}
	if err := checkFields(n, "a gate", gateFields); err != nil {
		return base, err
	}
	var raw rawGate
	if err := n.Decode(&raw); err != nil {
		return base, fmt.Errorf("%w: %w", ErrBadPlan, err)
	}
	g := base
	if raw.MinAgents != nil {
		g.MinAgents = *raw.MinAgents
	}
	if raw.Success != nil {
		g.Success = *raw.Success
	}
	if raw.MaxFailures != nil {
		g.MaxFailures = *raw.MaxFailures
	}
	switch {
	case g.MinAgents < 0:
		return g, fmt.Errorf("%w: line %d: gate: min_agents %d: want 0 or more", ErrBadPlan, n.Line, g.MinAgents)
	case !(g.Success >= 0 && g.Success <= 1):
		return g, fmt.Errorf("%w: line %d: gate: success %v: want a fraction in [0,1] (0.95)", ErrBadPlan, n.Line, g.Success)
	case !(g.MaxFailures >= 0 && g.MaxFailures <= 1):
		return g, fmt.Errorf("%w: line %d: gate: max_failures %v: want a fraction in [0,1] (0.02)", ErrBadPlan, n.Line, g.MaxFailures)
	}
	return g, nil
}

// checkFields refuses a node that is not a mapping or has a key not in
// allowed, naming its line.
func checkFields(n *yaml.Node, what string, allowed []string) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("%w: line %d: %s must be a mapping of fields", ErrBadPlan, n.Line, what)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		ok := false
		for _, a := range allowed {
			ok = ok || k.Value == a
		}
		if !ok {
			return fmt.Errorf("%w: line %d: %s has no field %q (fields: %v)", ErrBadPlan, k.Line, what, wire.Printable(k.Value, maxName), allowed)
		}
	}
	return nil
}
