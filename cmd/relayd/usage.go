// Command-line mistakes: flag parsing with suggestions, --help in one
// format for every command, warnings about unknown RELAYD_* variables.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/relayd/relayd/pkg/node"
)

// parseFlags parses args into fs. --help prints the flags to stderr in
// the format of serve --help (and returns flag.ErrHelp, exit status 0);
// any other mistake is a usageError that names the nearest flag and
// points to --help. synopsis is the command's usage line without
// "Usage: ".
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer, synopsis string) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return flagError(fs, fs.Parse(args), stderr, synopsis)
}

// flagError turns an error of fs.Parse into what parseFlags returns.
func flagError(fs *flag.FlagSet, err error, stderr io.Writer, synopsis string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, flag.ErrHelp) {
		printFlagHelp(stderr, fs, synopsis)
		return err
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		name = strings.TrimLeft(name, "-")
		var known []string
		fs.VisitAll(func(f *flag.Flag) { known = append(known, f.Name) })
		msg = "unknown flag --" + name
		if s := nearest(name, known); s != "" {
			msg += fmt.Sprintf(" (did you mean --%s?)", s)
		}
	} else {
		// Go names flags with one dash; the documentation uses two.
		msg = strings.ReplaceAll(msg, " -", " --")
	}
	return usageError{fmt.Errorf("%s; see %q", msg, fs.Name()+" --help")}
}

// envInUsage finds "(env RELAYD_X)" in a flag's usage text.
var envInUsage = regexp.MustCompile(`\s*\(env (RELAYD_[A-Z0-9_]+)\)`)

// printFlagHelp prints fs's flags as serve --help does: the flag, then
// its usage with its environment variable and default.
func printFlagHelp(w io.Writer, fs *flag.FlagSet, synopsis string) {
	fmt.Fprintf(w, "Usage: %s\n\n", synopsis)
	fs.VisitAll(func(f *flag.Flag) {
		usage, env := f.Usage, ""
		if m := envInUsage.FindStringSubmatch(usage); m != nil {
			usage, env = envInUsage.ReplaceAllString(usage, ""), "env "+m[1]+", "
		}
		fmt.Fprintf(w, "  --%s\n        %s (%sdefault %q)\n", f.Name, usage, env, f.DefValue)
	})
}

// nearest is the candidate closest to s by edit distance, or "" when
// none is close enough to be what was meant (at most a third of the
// letters differ, and at least one matches).
func nearest(s string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		d := editDistance(strings.ToLower(s), strings.ToLower(c))
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD < 0 || bestD > max(1, len(s)/3) || bestD >= len(s) {
		return ""
	}
	return best
}

// editDistance counts the letters to insert, delete, change or swap
// with a neighbour to turn a into b (optimal string alignment distance;
// bytes: flag and variable names are ASCII).
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// commands are relayd's subcommands, for suggestions.
var commands = []string{"serve", "keygen", "certs", "publish", "tuf", "sync", "members", "status", "tree", "compliance", "cache", "rollout", "fetch", "agent", "loadgen", "version", "help"}

// scriptEnv are variables of the project's scripts (scripts/bench) that
// relayd inherits without reading them, and those `relayd agent --exec`
// sets for its command.
var scriptEnv = []string{"RELAYD_BIN", "RELAYD_ARGS", "RELAYD_PORT", "RELAYD_GENERATION", "RELAYD_DIR"}

// knownEnv is every RELAYD_* variable some command reads.
func knownEnv() []string {
	cfg := node.DefaultConfig()
	var lc logConfig
	known := []string{"RELAYD_CONFIG", "RELAYD_RELAY", "RELAYD_PUBKEY", "RELAYD_OUT", "RELAYD_AGENT_ID",
		"RELAYD_AGENT_GROUP", "RELAYD_AGENT_EXEC", "RELAYD_AGENT_EXEC_TIMEOUT", "RELAYD_ADMIN_URL", "RELAYD_ADMIN_TOKEN_FILE"}
	for _, o := range serveOptions(&cfg, &lc) {
		known = append(known, envName(o.name))
	}
	return known
}

// unknownEnv warns about each RELAYD_* variable of environ (KEY=value
// items) that no command reads, naming the nearest known one: a
// misspelt variable is otherwise silently ignored.
func unknownEnv(environ []string) []string {
	known := knownEnv()
	var warns []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "RELAYD_") || slices.Contains(known, k) || slices.Contains(scriptEnv, k) {
			continue
		}
		w := fmt.Sprintf("warning: environment variable %s is not a relayd setting and is ignored", k)
		if s := nearest(strings.TrimPrefix(k, "RELAYD_"), trimAll(known, "RELAYD_")); s != "" {
			w += fmt.Sprintf(" (did you mean RELAYD_%s?)", s)
		}
		warns = append(warns, w)
	}
	return warns
}

func trimAll(ss []string, prefix string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.TrimPrefix(s, prefix)
	}
	return out
}
