// Flag helpers shared by the commands.
package main

import "strings"

// splitComma splits a comma-separated list, trimming spaces and dropping
// empty items: " a, b,,c " is [a b c]. Every list a command takes (flags,
// environment, a YAML scalar) is split by it.
func splitComma(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// listFlag is a flag that may be given several times and takes
// comma-separated values: --include a --include b,c is [a b c].
type listFlag struct{ v *[]string }

func (l listFlag) String() string {
	if l.v == nil {
		return ""
	}
	return strings.Join(*l.v, ",")
}

func (l listFlag) Set(s string) error {
	*l.v = append(*l.v, splitComma(s)...)
	return nil
}

// envOr is the value of the environment variable key, or def.
func envOr(env func(string) (string, bool), key, def string) string {
	if v, ok := env(key); ok {
		return v
	}
	return def
}
