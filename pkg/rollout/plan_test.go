package rollout

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const examplePlan = `name: windows-fleet
rings:
  - {name: canary, groups: ["branch-a"], soak: 10m}
  - {name: early,  groups: ["branch-b", "eu-*"], soak: 1h, gate: {min_agents: 5}}
  - {name: broad,  groups: ["*"]}
gate: {min_agents: 1, success: 0.95, max_failures: 0.02}
`

func TestParsePlan(t *testing.T) {
	t.Parallel()
	p, err := ParsePlan([]byte(examplePlan))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "windows-fleet" || len(p.Rings) != 3 {
		t.Fatalf("plan %+v", p)
	}
	if r := p.Rings[0]; r.Name != "canary" || r.Soak != 10*time.Minute || r.Gate != (Gate{MinAgents: 1, Success: 0.95, MaxFailures: 0.02}) {
		t.Errorf("ring 0 %+v", r)
	}
	if r := p.Rings[1]; r.Soak != time.Hour || r.Gate != (Gate{MinAgents: 5, Success: 0.95, MaxFailures: 0.02}) || len(r.Groups) != 2 {
		t.Errorf("ring 1 (gate override) %+v", r)
	}
	if r := p.Rings[2]; r.Soak != 0 || r.Groups[0] != "*" {
		t.Errorf("ring 2 %+v", r)
	}
	d, err := ParsePlan([]byte("name: x\nrings: [{name: a, groups: ['*']}]\n"))
	if err != nil || d.Rings[0].Gate != DefaultGate {
		t.Errorf("no gate: %+v, %v; want the default gate", d, err)
	}
}

func TestParsePlanRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, plan, want string }{
		{"empty", "", "empty"},
		{"no name", "rings: [{name: a, groups: ['*']}]", "line 1: name"},
		{"no rings", "name: x", "rings: the plan has none"},
		{"unknown field", "name: x\nrings: [{name: a, groups: ['*']}]\nringgs: []", `line 3: the plan has no field "ringgs"`},
		{"unknown ring field", "name: x\nrings:\n  - name: a\n    groups: ['*']\n    sok: 1m", `line 5: a ring has no field "sok"`},
		{"unknown gate field", "name: x\nrings: [{name: a, groups: ['*']}]\ngate: {succes: 1}", `no field "succes"`},
		{"negative soak", "name: x\nrings:\n  - {name: a, groups: ['*'], soak: -1m}", `line 3: ring "a": soak`},
		{"bad soak", "name: x\nrings:\n  - {name: a, groups: ['*'], soak: soon}", `soak: "soon"`},
		{"success above 1", "name: x\nrings: [{name: a, groups: ['*']}]\ngate: {success: 1.5}", "line 3: gate: success 1.5"},
		{"negative failures", "name: x\nrings:\n  - {name: a, groups: ['*'], gate: {max_failures: -0.1}}", "max_failures -0.1"},
		{"negative min", "name: x\nrings: [{name: a, groups: ['*']}]\ngate: {min_agents: -1}", "min_agents -1"},
		{"no groups", "name: x\nrings: [{name: a}]", `ring "a": groups`},
		{"bad pattern", "name: x\nrings: [{name: a, groups: ['[']}]", "is not a pattern"},
		{"duplicate ring", "name: x\nrings:\n  - {name: a, groups: ['*']}\n  - {name: a, groups: ['*']}", `line 4: ring "a" is already named at line 3`},
		{"long name", "name: x\nrings: [{name: " + strings.Repeat("r", 65) + ", groups: ['*']}]", "name: want 1 to 64"},
		{"not a mapping", "- a\n- b", "must be a mapping"},
		{"too many rings", "name: x\nrings:\n" + strings.Repeat("  - {name: a, groups: ['*']}\n", 17), "more than 16"},
		{"too large", "name: x\n#" + strings.Repeat("x", MaxPlanSize), "larger than"},
		{"wrong type", "name: x\nrings: [{name: a, groups: 3}]", "cannot unmarshal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParsePlan([]byte(tc.plan))
			if err == nil || !errors.Is(err, ErrBadPlan) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want ErrBadPlan with %q", err, tc.want)
			}
		})
	}
}

func TestLoadPlan(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	name := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(name, []byte(examplePlan), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := LoadPlan(name); err != nil || p.Name != "windows-fleet" {
		t.Fatalf("LoadPlan: %+v, %v", p, err)
	}
	if err := os.WriteFile(name, []byte("name: x\nrings: [{name: a, groups: ['*']}]\ngate: {success: 2}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPlan(name); err == nil || !strings.Contains(err.Error(), name) {
		t.Fatalf("err %v, want it to name the file", err)
	}
	if _, err := LoadPlan(filepath.Join(dir, "missing.yaml")); !errors.Is(err, ErrBadPlan) {
		t.Fatalf("missing file: %v", err)
	}
}

// FuzzParsePlan: any file parses or is refused with ErrBadPlan, never a
// panic, and a parsed plan keeps its bounds.
func FuzzParsePlan(f *testing.F) {
	for _, s := range []string{examplePlan, "", "---\n", "~", "name: x\nrings: [{name: a, groups: ['*'], gate: ~}]", "name: x\nrings: [~]", "name: x\ngate: []\nrings: [{name: a, groups: ['*']}]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePlan(b)
		if err != nil {
			if !errors.Is(err, ErrBadPlan) {
				t.Fatalf("error %v is not ErrBadPlan", err)
			}
			return
		}
		if len(p.Rings) == 0 || len(p.Rings) > 16 || p.Name == "" {
			t.Fatalf("plan out of bounds: %+v", p)
		}
		for _, r := range p.Rings {
			if r.Soak < 0 || r.Gate.Success < 0 || r.Gate.Success > 1 || r.Gate.MaxFailures < 0 || r.Gate.MaxFailures > 1 || r.Gate.MinAgents < 0 {
				t.Fatalf("ring out of bounds: %+v", r)
			}
		}
	})
}
