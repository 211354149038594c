// Package glob selects catalog paths by patterns such as "security/**":
// what a mirror keeps (--mirror-include), what an agent syncs
// (--include), what a prefetch warms.
package glob

import (
	"fmt"
	"path"
	"strings"
)

// Filter selects catalog paths by glob patterns: "*" matches within one
// path segment (path.Match rules), "**" matches any number of segments.
// An empty filter selects everything.
type Filter struct {
	patterns [][]string
}

// NewFilter checks and compiles patterns such as "security/**" or
// "software/linux-amd64/**".
func New(patterns []string) (*Filter, error) {
	f := &Filter{}
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		if p == "" || strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("glob: pattern %q: want a relative glob like security/**", p)
		}
		segs := strings.Split(p, "/")
		for _, s := range segs {
			if s == "**" {
				continue
			}
			if _, err := path.Match(s, ""); err != nil {
				return nil, fmt.Errorf("glob: pattern %q: %w", p, err)
			}
		}
		f.patterns = append(f.patterns, segs)
	}
	return f, nil
}

// All reports whether the filter selects every path.
func (f *Filter) All() bool { return f == nil || len(f.patterns) == 0 }

// Match reports whether p is selected.
func (f *Filter) Match(p string) bool {
	if f.All() {
		return true
	}
	segs := strings.Split(p, "/")
	for _, pat := range f.patterns {
		if matchSegs(pat, segs) {
			return true
		}
	}
	return false
}

func matchSegs(pat, segs []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			for i := 0; i <= len(segs); i++ {
				if matchSegs(rest, segs[i:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], segs[0]); !ok {
			return false
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
}
