package node

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/wire"
)

// metricsNode is a proxy node with every part the metrics read: a mirror
// following the catalog, a group and an upstream. It is not started.
func metricsNode(tb testing.TB, clk clock.Clock) *Node {
	tb.Helper()
	root := testRoot(tb)
	cfg := DefaultConfig()
	cfg.Node, cfg.Group, cfg.Mode = "m1", "hq", ModeProxy
	cfg.DataDir = filepath.Join(tb.TempDir(), "data")
	cfg.Listen, cfg.Admin, cfg.Gossip = "127.0.0.1:0", "", "127.0.0.1:0"
	cfg.Upstream.Upstreams = []string{"http://127.0.0.1:1"}
	cfg.Root = root
	cfg.DrainTimeout = time.Second
	cfg.Upstream.Schedule = "Mon-Fri 08:00-18:00=2MB/s, *=50MB/s" // the window's series
	n, err := New(cfg, zerolog.Nop(), clk)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(n.closeParts)
	return n
}

// TestMetricsAsDocumented: a node running every part exports exactly the
// relayd_* series docs/operations.md lists, each of the right type and
// with its label values.
func TestMetricsAsDocumented(t *testing.T) {
	t.Parallel()
	n := metricsNode(t, clock.Real{})
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, name := range regexp.MustCompile(`relayd_[a-z_]+`).FindAllString(string(doc), -1) {
		// An origin with a rollout plan exports these (TestOriginRollout).
		if !slices.Contains(documented, name) && !slices.Contains(rolloutMetrics, name) {
			documented = append(documented, name)
		}
	}
	families, err := n.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var exported []string
	for _, f := range families {
		name := f.GetName()
		if !strings.HasPrefix(name, "relayd_") {
			continue
		}
		exported = append(exported, name)
		want := "GAUGE"
		switch {
		case name == "relayd_fill_latency_seconds":
			want = "HISTOGRAM"
		case strings.HasSuffix(name, "_total") && name != "relayd_mirror_objects_total":
			want = "COUNTER"
		}
		if f.GetType().String() != want || f.GetHelp() == "" {
			t.Errorf("%s: type %v, help %q; want %v with a help text", name, f.GetType(), f.GetHelp(), want)
		}
		var labels []string
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
		}
		slices.Sort(labels)
		switch name {
		case "relayd_requests_total":
			if want := []string{"result=error", "result=hit", "result=miss", "result=peer", "result=revalidated", "result=stale"}; !slices.Equal(labels, want) {
				t.Errorf("%s: labels %v, want %v", name, labels, want)
			}
		case "relayd_tuf_update_failures_total":
			if want := []string{"reason=expired", "reason=invalid", "reason=not_found", "reason=rollback", "reason=too_large", "reason=unavailable"}; !slices.Equal(labels, want) {
				t.Errorf("%s: labels %v, want %v", name, labels, want)
			}
		case "relayd_upstream_wire_bytes_total", "relayd_upstream_content_bytes_total":
			if want := []string{"kind=other", "kind=security", "kind=software"}; !slices.Equal(labels, want) {
				t.Errorf("%s: labels %v, want %v", name, labels, want)
			}
		case "relayd_upstream_waiting_bytes", "relayd_upstream_waiting_requests":
			if want := []string{"class=background", "class=foreground", "class=urgent"}; !slices.Equal(labels, want) {
				t.Errorf("%s: labels %v, want %v", name, labels, want)
			}
		case "relayd_compliance_agents": // no gates: the whole subtree
			if want := []string{"ring=", "ring=", "ring=", "ring=", "state=behind", "state=failed", "state=not_reporting", "state=on_target"}; !slices.Equal(labels, want) {
				t.Errorf("%s: labels %v, want %v", name, labels, want)
			}
		case "relayd_group_members":
			if want := []string{"state=alive", "state=gone"}; !slices.Equal(labels, want) {
				t.Errorf("%s: labels %v, want %v", name, labels, want)
			}
		default:
			if len(labels) != 0 {
				t.Errorf("%s: labels %v, want none", name, labels)
			}
		}
	}
	slices.Sort(documented)
	slices.Sort(exported)
	if !slices.Equal(documented, exported) {
		t.Fatalf("exported %v\ndocumented %v", exported, documented)
	}
}

// The generation served is the one last announced, and the status and
// the tree read the node's clock.
func TestGenerationAndClock(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	n := metricsNode(t, clk)
	n.announce(wire.Generation{Generation: 42})
	clk.Advance(90 * time.Minute)
	s := n.status()
	if s.Generation != 42 || s.Uptime != "1h30m0s" {
		t.Fatalf("status: generation %d, uptime %s; want 42, 1h30m0s", s.Generation, s.Uptime)
	}
	if r := n.selfReport(false); r.Generation != 42 || !r.Sent.Equal(clk.Now()) {
		t.Fatalf("report: generation %d, sent %v; want 42, %v", r.Generation, r.Sent, clk.Now())
	}
	families, err := n.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "relayd_generation" {
			if v := f.GetMetric()[0].GetGauge().GetValue(); v != 42 {
				t.Fatalf("relayd_generation = %v, want 42", v)
			}
			return
		}
	}
	t.Fatal("no relayd_generation")
}

// BenchmarkScrape is one Prometheus scrape of the node's registry.
func BenchmarkScrape(b *testing.B) {
	n := metricsNode(b, clock.Real{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := n.reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}
