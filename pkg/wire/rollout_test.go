package wire

import (
	"errors"
	"strings"
	"testing"
)

func pin(v uint64) Pin { return Pin{Version: v, Length: 100, SHA256: strings.Repeat("a", 64)} }

func TestRingOf(t *testing.T) {
	g := &Gates{Rings: []Ring{
		{Name: "canary", Groups: []string{"branch-a"}},
		{Name: "early", Groups: []string{"branch-*", "eu-*"}},
		{Name: "broad", Groups: []string{"hq"}},
	}}
	for group, want := range map[string]int{"branch-a": 0, "branch-b": 1, "eu-west": 1, "hq": 2, "asia": 2, "": 2} {
		if got := g.RingOf(group); got != want {
			t.Errorf("RingOf(%q) = %d, want %d", group, got, want)
		}
	}
	if got := (&Gates{}).RingOf("x"); got != -1 {
		t.Errorf("no rings: RingOf = %d, want -1", got)
	}
}

func TestGatesValidate(t *testing.T) {
	ok := Gates{Newest: pin(3), Rings: []Ring{{Name: "a", Groups: []string{"x"}, Open: pin(3)}, {Name: "b", Open: pin(2)}}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid gates: %v", err)
	}
	bad := map[string]func(g *Gates){
		"no rings":         func(g *Gates) { g.Rings = nil },
		"later ahead":      func(g *Gates) { g.Rings[1].Open = pin(3); g.Rings[0].Open = pin(2) },
		"beyond newest":    func(g *Gates) { g.Rings[0].Open = pin(4) },
		"twice named":      func(g *Gates) { g.Rings[1].Name = "a" },
		"bad pattern":      func(g *Gates) { g.Rings[0].Groups = []string{"["} },
		"open without pin": func(g *Gates) { g.Rings[1].Open.SHA256 = "" },
		"long reason":      func(g *Gates) { g.Reason = strings.Repeat("r", 513) },
	}
	for name, mutate := range bad {
		g := ok
		g.Rings = append([]Ring(nil), ok.Rings...)
		mutate(&g)
		if err := g.Validate(); !errors.Is(err, ErrBadGates) {
			t.Errorf("%s: Validate = %v, want ErrBadGates", name, err)
		}
	}
}
