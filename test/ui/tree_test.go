package ui

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/relayd/relayd/internal/proctest"
	"github.com/relayd/relayd/pkg/admin"
)

// rowsJS reads a table of the page: one object per row, field → text.
const rowsJS = `Array.from(document.querySelectorAll('%s tbody tr')).map(tr =>
	Object.fromEntries(Array.from(tr.cells).map(td => [td.dataset.field, td.textContent])))`

// treeRows is /v1/tree as the page's tree table must show it: one row per
// relay, in the document's order (fields that move every second, the ages,
// left out).
func treeRows(g admin.GroupView, out []map[string]string) []map[string]string {
	for _, m := range g.Members {
		health := m.Health
		if m.Problem != "" {
			health += ": " + m.Problem
		}
		lag := strconv.FormatUint(m.Lag, 10)
		if m.Ahead {
			lag += " (ahead)"
		}
		hits, misses := "", ""
		if m.Cache != nil {
			hits, misses = strconv.FormatInt(m.Cache.Hits, 10), strconv.FormatInt(m.Cache.Misses, 10)
		}
		out = append(out, map[string]string{
			"group": g.Group, "node": m.Node, "mode": m.Mode, "health": health,
			"generation": strconv.FormatUint(m.Generation, 10), "lag": lag,
			"agents": strconv.Itoa(m.Agents), "hits": hits, "misses": misses,
			"metadata": strconv.FormatBool(m.MetadataAge != "" || m.ExpiredSince != ""),
		})
	}
	for _, c := range g.Children {
		out = treeRows(c, out)
	}
	return out
}

// pageRows is the page's tree table with the fields of want (metadata:
// whether the cell says something).
func pageRows(raw, want []map[string]string) []map[string]string {
	rows := only(raw, want)
	for i := range rows {
		rows[i]["metadata"] = strconv.FormatBool(raw[i]["metadata"] != "")
	}
	return rows
}

// TestDashboardTree: the page at an origin's /ui/ shows the tree below
// it (origin → hq mirror → branch proxy) with the numbers /v1/tree gives,
// its compliance tables (two agents at the branch) the numbers of
// /v1/compliance, and its summary the generation of /v1/status; the page
// carries its Content-Security-Policy.
func TestDashboardTree(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	tree, _, root := publishedTree(t)
	tk := treeKey(t)
	origin, adminURL := startOrigin(t, tree, "--tree-key-file", tk, "--report-interval", "1s")
	hq := start(t, "--mode", "mirror", "--node", "hq-1", "--group", "hq", "--upstream", origin.URL, "--root", root,
		"--data-dir", t.TempDir(), "--tree-key-file", tk, "--report-interval", "1s")
	branch := start(t, "--mode", "proxy", "--node", "branch-a-1", "--group", "branch-a", "--upstream", hq.URL, "--root", root,
		"--data-dir", t.TempDir(), "--tree-key-file", tk, "--report-interval", "1s")
	startAgent(t, branch.URL, root, "branch-a", "agent-1")
	startAgent(t, branch.URL, root, "branch-a", "agent-2")

	var csp string
	proctest.Eventually(t, 10*time.Second, "the page's CSP", func() error {
		resp, err := httpGet(adminURL + "/ui/")
		if err != nil {
			return err
		}
		csp = resp.Header.Get("Content-Security-Policy")
		return nil
	})
	if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q: want script-src 'self' and default-src 'none'", csp)
	}

	run(t, ctx, "open the dashboard", chromedp.Navigate(adminURL+"/ui/"))
	proctest.Eventually(t, 30*time.Second, "the page's tree equal to /v1/tree, with every relay", func() error {
		var doc admin.GroupView
		if err := getJSON(adminURL+"/v1/tree", "", &doc); err != nil {
			return err
		}
		want := treeRows(doc, nil)
		raw, err := eval[[]map[string]string](ctx, fmt.Sprintf(rowsJS, "#tree-table"))
		if err != nil {
			return err
		}
		got := pageRows(raw, want)
		if len(want) != 3 {
			return fmt.Errorf("/v1/tree has %d relays, want 3 (origin, hq-1, branch-a-1): %v", len(want), want)
		}
		for _, r := range want {
			if r["generation"] != "1" || r["health"] != "ok" {
				return fmt.Errorf("relay %s at generation %s, health %s: want 1, ok", r["node"], r["generation"], r["health"])
			}
		}
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("page rows\n%v\nwant (/v1/tree)\n%v", got, want)
		}
		return nil
	})
	checkCompliance(t, ctx, adminURL, 2, "branch-a")
	var st admin.Status
	if err := getJSON(adminURL+"/v1/status", "", &st); err != nil {
		t.Fatal(err)
	}
	gen, err1 := text(ctx, "sum-generation")
	relays, err2 := text(ctx, "sum-relays")
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	if gen != strconv.FormatUint(st.Generation, 10) || relays != "3" {
		t.Errorf("summary: generation %q, relays %q; want %d (/v1/status), 3", gen, relays, st.Generation)
	}
}
