package hops

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func TestParseCheckFormat(t *testing.T) {
	t.Parallel()
	p, err := Parse(" branch-a , hq ")
	if err != nil || !slices.Equal(p, []string{"branch-a", "hq"}) {
		t.Fatalf("Parse = %q, %v", p, err)
	}
	if err := Check(p, "region", 8); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if err := Check(p, "branch-a", 8); !errors.Is(err, ErrLoop) {
		t.Fatalf("own group: %v", err)
	}
	if err := Check(p, "x", 2); !errors.Is(err, ErrTooMany) {
		t.Fatalf("too many: %v", err)
	}
	if got := Format(p, "region"); got != "branch-a,hq,region" {
		t.Fatalf("Format = %q", got)
	}
	if got := Format(nil, "a"); got != "a" {
		t.Fatalf("Format = %q", got)
	}
	for _, bad := range []string{"a,,b", "a b", `"a"`, string(make([]byte, 2000))} {
		if _, err := Parse(bad); !errors.Is(err, ErrBad) {
			t.Errorf("Parse(%.20q) accepted", bad)
		}
	}
	ctx := With(context.Background(), p)
	if !slices.Equal(From(ctx), p) || From(context.Background()) != nil {
		t.Fatal("context round trip")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("a,b,c")
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		p, err := Parse(v)
		if err != nil {
			return
		}
		for _, g := range p {
			if g == "" {
				t.Fatal("empty group accepted")
			}
		}
		back, err := Parse(Format(p[:max(len(p)-1, 0)], "z"))
		if err != nil || len(back) != max(len(p), 1) {
			t.Fatalf("round trip of %q: %q %v", v, back, err)
		}
	})
}
