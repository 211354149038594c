package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/relayd/relayd/internal/proctest"
)

// TestTransferWindowHoldsMirrorSync: a proxy that mirrors security/**
// has a transfer window of rate 0 that ends a few seconds after it
// starts (--upstream-schedule with times of day, in TZ=UTC). A new
// generation's security objects wait for the window — not one reaches
// the origin before it ends — while an agent's fill of a software object
// through the same relay passes at once; when the window ends, the sync
// completes. The WAN accounting counts wire and content per kind.
func TestTransferWindowHoldsMirrorSync(t *testing.T) {
	t.Parallel()
	agentFile := "software/linux-amd64/1.0/agent-1.0.tar.gz"
	files := map[string][]byte{
		agentFile:             makeData(701, 1<<20),
		"other/changelog.txt": makeData(702, 2500),
	}
	tree, key, root := publishedTree(t, files) // no security objects yet: generation 1 goes live at once
	origin := startRelayd(t, "--mode", "origin", "--root", tree)

	// Held from a minute ago until `open`: long enough for the steps
	// below on a loaded machine; the test waits for it by polling.
	now := time.Now().UTC()
	open := now.Add(30 * time.Second).Truncate(time.Second)
	schedule := fmt.Sprintf("%s-%s=0, *=100MB/s", now.Add(-time.Minute).Format("15:04:05"), open.Format("15:04:05"))
	admin := freeAddr(t)
	argv := proctest.RelaydArgv(relaydBin, "--mode", "proxy", "--upstream", origin.URL, "--root", root, "--data-dir", t.TempDir(),
		"--mirror-include", "security/**", "--admin", admin, "--upstream-schedule", schedule)
	relay := startProc(t, "relayd", argv, []string{"TZ=UTC"}, "")
	relay.WaitReady(t)
	waitCatalog(t, relay, readFile(t, timestampFile(tree)), 30*time.Second)

	security := map[string][]byte{
		"security/2026/kb-001.patch": makeData(711, 40000),
		"security/2026/kb-002.patch": makeData(712, 70000),
	}
	writeFiles(t, tree, security)
	if out := publish(t, tree, key); !strings.Contains(out, "published generation 2") {
		t.Fatalf("relayd publish: %q, want generation 2", out)
	}
	c := newClient()
	scrape := func() []byte { return get(t, c, http.MethodGet, "http://"+admin+"/metrics").body }
	eventually(t, 20*time.Second, "the mirror sync of generation 2 to wait for the window", func() error {
		m := scrape()
		if v, _ := metric(m, `relayd_upstream_waiting_requests{class="background"}`); v < 1 {
			return fmt.Errorf("background requests waiting: %v", v)
		}
		if v, ok := metric(m, `relayd_upstream_window_rate_bytes`); !ok || v != 0 {
			return fmt.Errorf("window rate %v (present %v), want 0", v, ok)
		}
		return nil
	})
	if st := getSync(t, admin); st.Generation != 1 || st.Target != 2 {
		t.Fatalf("sync while held: %+v, want generation 1 toward 2", st)
	}
	var status struct {
		Window struct {
			Held bool   `json:"held"`
			Rule string `json:"rule"`
		} `json:"window"`
	}
	if r := get(t, c, http.MethodGet, "http://"+admin+"/v1/status"); json.Unmarshal(r.body, &status) != nil || !status.Window.Held ||
		!strings.HasSuffix(status.Window.Rule, "=0") {
		t.Fatalf("/v1/status window: %s", truncate(r.body))
	}

	// The agent's fill passes while the window holds the sync.
	r := get(t, c, http.MethodGet, relay.URL+"/"+agentFile)
	wantObject(t, r, files[agentFile], "agent fill during the window")
	if r.cache() != "MISS" {
		t.Errorf("agent fill: X-Relay-Cache %q, want MISS", r.cache())
	}
	if time.Now().After(open) {
		t.Fatalf("the steps took past the window's end (%s): the test cannot tell held from slow", open.Format(time.TimeOnly))
	}
	for p := range security {
		if n := objectGets(origin.Log())["/"+p]; n != 0 {
			t.Fatalf("origin GETs of %s during the window: %d, want 0", p, n)
		}
	}

	eventually(t, 60*time.Second, "the sync to complete after the window", func() error {
		if st := getSync(t, admin); st.State != "in-sync" || st.Generation != 2 {
			return fmt.Errorf("sync %+v", st)
		}
		return nil
	})
	for _, l := range logLines(origin.Log()) {
		p, _ := l["path"].(string)
		if l["message"] != "request" || security[strings.TrimPrefix(p, "/")] == nil {
			continue
		}
		at, err := time.Parse(time.RFC3339, fmt.Sprint(l["time"]))
		if err != nil || at.Before(open) {
			t.Errorf("origin served %s at %v (%v), before the window ended at %s", p, l["time"], err, open.Format(time.RFC3339))
		}
	}
	for p, b := range security {
		wantObject(t, get(t, c, http.MethodGet, relay.URL+"/"+p), b, "mirrored "+p)
	}

	// Honest accounting: the content bytes are the objects' own, per kind;
	// the wire carries them at most (content codings carry fewer, and the
	// random test data is sent as it is).
	m := scrape()
	var secBytes float64
	for _, b := range security {
		secBytes += float64(len(b))
	}
	for kind, content := range map[string]float64{"security": secBytes, "software": float64(len(files[agentFile]))} {
		c, okc := metric(m, `relayd_upstream_content_bytes_total{kind="`+kind+`"}`)
		w, okw := metric(m, `relayd_upstream_wire_bytes_total{kind="`+kind+`"}`)
		if !okc || !okw || c != content || w <= 0 || w > c {
			t.Errorf("%s: content %v (present %v), wire %v (present %v); want content %v, wire in (0, content]", kind, c, okc, w, okw, content)
		}
	}
	if v, ok := metric(m, `relayd_upstream_waiting_requests{class="background"}`); !ok || v != 0 {
		t.Errorf("background requests waiting after the sync: %v (present %v)", v, ok)
	}
	var stats struct {
		Upstream struct {
			WireBytes    int64   `json:"wire_bytes"`
			ContentBytes int64   `json:"content_bytes"`
			WireRatio    float64 `json:"wire_ratio"`
		} `json:"upstream"`
	}
	r = get(t, c, http.MethodGet, "http://"+admin+"/v1/cache/stats")
	if err := json.Unmarshal(r.body, &stats); err != nil || stats.Upstream.ContentBytes < int64(secBytes)+int64(len(files[agentFile])) ||
		stats.Upstream.WireRatio != float64(stats.Upstream.WireBytes)/float64(stats.Upstream.ContentBytes) {
		t.Errorf("/v1/cache/stats upstream: %s", truncate(r.body))
	}
}
