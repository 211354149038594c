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

// New checks and compiles patterns such as "security/**" or
// "software/linux-amd64/**". A pattern must be relative and have no empty
// segment ("security/", "a//b"): a catalog path has none, so such a
// pattern would select nothing without saying so.
func New(patterns []string) (*Filter, error) {
	f := &Filter{}
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		if p == "" || strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("pattern %q: want a relative glob like security/**", p)
		}
		segs := strings.Split(p, "/")
		for _, s := range segs {
			if s == "" {
				return nil, fmt.Errorf("pattern %q: empty path segment (a trailing or doubled slash): want e.g. %q", p, suggest(segs))
			}
			if s == "**" {
				continue
			}
			if _, err := path.Match(s, ""); err != nil {
				return nil, fmt.Errorf("pattern %q: %w", p, err)
			}
		}
		f.patterns = append(f.patterns, segs)
	}
	return f, nil
}

// suggest is the pattern without its empty segments, ending in "**" when
// it ended with a slash ("security/" → "security/**").
func suggest(segs []string) string {
	var out []string
	for _, s := range segs {
		if s != "" {
			out = append(out, s)
		}
	}
	if segs[len(segs)-1] == "" && (len(out) == 0 || out[len(out)-1] != "**") {
		out = append(out, "**")
	}
	return strings.Join(out, "/")
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
