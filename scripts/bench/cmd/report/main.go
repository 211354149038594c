// Command report turns a results file written by scripts/bench/run.sh into
// markdown for docs/benchmarks.md.
//
// Input lines it understands (anything else is ignored):
//
//	# key: value                       machine and version facts, listed first
//	DESC <scenario> <text>             one-line description of a scenario
//	CMD <scenario> <command line>      a command the scenario ran (measured)
//	RESULT <scenario> target=<name> k=v ...
//
// Each scenario becomes a table with one row per metric and one column per
// target, in the order they first appear, plus a ratio column for every
// relayd target that has an nginx counterpart (relayd → nginx,
// relayd-copy → nginx-copy, ...). Ratios are relayd ÷ nginx and are given
// only for metrics with a direction (see direction).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

type table struct {
	name    string
	desc    string
	cmds    []string                     // commands behind the numbers
	targets []string                     // column order
	metrics []string                     // row order
	values  map[string]map[string]string // target → metric → value
}

func main() {
	gobench := flag.String("gobench", "", "go test -bench output to append (optional)")
	flag.Parse()
	in := io.Reader(os.Stdin)
	if flag.NArg() > 0 {
		f, err := os.Open(flag.Arg(0))
		if err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			os.Exit(1)
		}
		defer f.Close()
		in = f
	}
	meta, tables, err := parse(in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	render(w, meta, tables)
	if *gobench != "" {
		renderGobench(w, *gobench)
	}
}

func parse(r io.Reader) ([]string, []*table, error) {
	var meta []string
	var order []*table
	byName := map[string]*table{}
	get := func(name string) *table {
		t := byName[name]
		if t == nil {
			t = &table{name: name, values: map[string]map[string]string{}}
			byName[name] = t
			order = append(order, t)
		}
		return t
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "# ") && strings.Contains(line, ": "):
			meta = append(meta, strings.TrimPrefix(line, "# "))
		case strings.HasPrefix(line, "DESC "):
			f := strings.SplitN(line, " ", 3)
			if len(f) == 3 {
				get(f[1]).desc = f[2]
			}
		case strings.HasPrefix(line, "CMD "):
			f := strings.SplitN(line, " ", 3)
			if len(f) == 3 && !slices.Contains(get(f[1]).cmds, f[2]) {
				get(f[1]).cmds = append(get(f[1]).cmds, f[2])
			}
		case strings.HasPrefix(line, "RESULT "):
			f := strings.Fields(line)
			if len(f) < 3 || !strings.HasPrefix(f[2], "target=") {
				continue
			}
			t := get(f[1])
			target := strings.TrimPrefix(f[2], "target=")
			if t.values[target] == nil {
				t.values[target] = map[string]string{}
				t.targets = append(t.targets, target)
			}
			for _, kv := range f[3:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					continue
				}
				if !slices.Contains(t.metrics, k) {
					t.metrics = append(t.metrics, k)
				}
				t.values[target][k] = v
			}
		}
	}
	return meta, order, sc.Err()
}

func render(w io.Writer, meta []string, tables []*table) {
	nginx := false
	for _, t := range tables {
		for _, tg := range t.targets {
			nginx = nginx || strings.HasPrefix(tg, "nginx")
		}
	}
	if nginx {
		fmt.Fprintln(w, "## relayd vs nginx proxy_cache (scripts/bench)")
	} else {
		fmt.Fprintln(w, "## relayd (scripts/bench)")
	}
	fmt.Fprintln(w)
	for _, m := range meta {
		k, v, _ := strings.Cut(m, ": ")
		fmt.Fprintf(w, "- %s: %s\n", k, v)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "↑ higher is better, ↓ lower is better. Ratio columns are relayd ÷ nginx for the same")
	fmt.Fprintln(w, "metric (for ↓ metrics, below 1 means relayd is better). GB/s and MB/s are 1e9 and 1e6 bytes/s.")
	for _, t := range tables {
		fmt.Fprintf(w, "\n### %s\n\n", t.name)
		if t.desc != "" {
			fmt.Fprintf(w, "%s\n\n", t.desc)
		}
		if len(t.cmds) > 0 {
			fmt.Fprintln(w, "Measured commands:")
			fmt.Fprintln(w, "\n```sh")
			for _, c := range t.cmds {
				fmt.Fprintln(w, c)
			}
			fmt.Fprint(w, "```\n\n")
		}
		type pair struct{ relayd, nginx string }
		var pairs []pair
		for _, tg := range t.targets {
			if rest, ok := strings.CutPrefix(tg, "relayd"); ok && slices.Contains(t.targets, "nginx"+rest) {
				pairs = append(pairs, pair{tg, "nginx" + rest})
			}
		}
		fmt.Fprint(w, "| metric |")
		for _, tg := range t.targets {
			fmt.Fprintf(w, " %s |", tg)
		}
		for _, p := range pairs {
			fmt.Fprintf(w, " %s / %s |", p.relayd, p.nginx)
		}
		fmt.Fprint(w, "\n|---|")
		for range len(t.targets) + len(pairs) {
			fmt.Fprint(w, "---:|")
		}
		fmt.Fprintln(w)
		for _, m := range t.metrics {
			dir := direction(m)
			label := m
			switch dir {
			case 1:
				label += " ↑"
			case -1:
				label += " ↓"
			}
			fmt.Fprintf(w, "| %s |", label)
			for _, tg := range t.targets {
				v, ok := t.values[tg][m]
				if !ok {
					v = "–"
				}
				fmt.Fprintf(w, " %s |", v)
			}
			for _, p := range pairs {
				fmt.Fprintf(w, " %s |", ratio(dir, t.values[p.relayd][m], t.values[p.nginx][m]))
			}
			fmt.Fprintln(w)
		}
	}
}

// direction says whether a larger value of metric k is better (1), worse
// (-1) or neither (0, e.g. client counts and background CPU), from the
// naming conventions the scenarios follow.
func direction(k string) int {
	switch {
	case strings.HasPrefix(k, "bg_cpu"), strings.HasPrefix(k, "ideal"), k == "clients", k == "conns",
		strings.HasSuffix(k, "status"):
		return 0
	case strings.HasSuffix(k, "gbps"), strings.HasSuffix(k, "mbps"), strings.HasSuffix(k, "rps"),
		strings.HasSuffix(k, "hit_ratio"):
		return 1
	case strings.HasSuffix(k, "_ms"), strings.HasSuffix(k, "secs"), strings.HasPrefix(k, "origin"), strings.Contains(k, "_origin"),
		strings.HasSuffix(k, "_mib"), strings.HasSuffix(k, "x_ideal"), strings.HasSuffix(k, "fail"),
		strings.HasSuffix(k, "errors"):
		return -1
	}
	return 0
}

func ratio(dir int, a, b string) string {
	if dir == 0 {
		return ""
	}
	x, err1 := strconv.ParseFloat(a, 64)
	y, err2 := strconv.ParseFloat(b, 64)
	if err1 != nil || err2 != nil || y == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", x/y)
}

func renderGobench(w io.Writer, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Benchmark") || strings.HasPrefix(l, "pkg:") ||
			strings.HasPrefix(l, "cpu:") || strings.HasPrefix(l, "FAIL") {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		return
	}
	fmt.Fprintln(w, "\n### Go micro-benchmarks (go test -bench=. -benchmem ./pkg/...)")
	fmt.Fprintln(w, "\n```")
	for _, l := range keep {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintln(w, "```")
}
