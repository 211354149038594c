package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/admin"
	"github.com/relayd/relayd/pkg/agent"
)

func TestSplitComma(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"empty", "", nil},
		{"one", "a", []string{"a"}},
		{"spaces and empties", " a, b,,c ,", []string{"a", "b", "c"}},
		{"only commas", " , ,", nil},
	} {
		if got := splitComma(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("%s: splitComma(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

// Every list flag splits the same way: repeated and comma-separated.
func TestListFlag(t *testing.T) {
	t.Parallel()
	var got []string
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Var(listFlag{&got}, "include", "")
	if err := fs.Parse([]string{"--include", "a/**, b/**", "--include", "c/**"}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a/**", "b/**", "c/**"}; !slices.Equal(got, want) {
		t.Fatalf("--include a/**,b/** --include c/** = %q, want %q", got, want)
	}
}

// relayd cache prefetch --include 'a/**,b/**' sends two patterns.
func TestCachePrefetchSplitsInclude(t *testing.T) {
	t.Parallel()
	var body struct {
		Paths   []string `json:"paths"`
		Include []string `json:"include"`
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/cache/prefetch" {
			http.NotFound(w, r)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Write([]byte(`{"queued":3}`))
	}))
	defer srv.Close()
	var out, errb bytes.Buffer
	err := realMain(context.Background(), []string{"cache", "prefetch", "--admin", srv.URL, "--include", "a/**,b/**", "--include", "c/**"},
		&out, &errb, envOf(nil))
	if err != nil {
		t.Fatalf("%v (%s)", err, errb.String())
	}
	if want := []string{"a/**", "b/**", "c/**"}; !slices.Equal(body.Include, want) {
		t.Fatalf("include sent %q, want %q", body.Include, want)
	}
}

func TestRelayConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	root := filepath.Join(dir, "1.root.json")
	if err := os.WriteFile(root, []byte(`{"signed":{"_type":"root"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge.json")
	if err := os.WriteFile(huge, make([]byte, maxRootBytes+1), 0o644); err != nil {
		t.Fatal(err)
	}
	refuse := func(u *url.URL) error {
		if u.Hostname() == "bad" {
			return errors.New("refused")
		}
		return nil
	}
	cfg, err := relayConfig(" http://a:1, http://b:2/x ,", root, "", refuse)
	if err != nil || !slices.Equal(cfg.Relays, []string{"http://a:1", "http://b:2/x"}) || len(cfg.Root) == 0 {
		t.Fatalf("relayConfig = %q, root %d bytes, %v", cfg.Relays, len(cfg.Root), err)
	}
	for _, tc := range []struct {
		name, relays, root, pubkey string
		usage                      bool
		want                       string
	}{
		{"no relay", " , ", root, "", true, "--relay is required"},
		{"not a base URL", "ftp://a", root, "", true, "--relay"},
		{"refused by check", "http://a:1,http://bad:2", root, "", true, "--relay http://bad:2: refused"},
		{"no root", "http://a:1", "", "", true, "--root is required"},
		{"missing root file", "http://a:1", root + ".nope", "", false, "--root"},
		{"root too long", "http://a:1", huge, "", false, "not a TUF root"},
		{"pubkey", "http://a:1", root, "catalog.pub", true, "Migrating to TUF"},
		{"pubkey without root", "http://a:1", "", "catalog.pub", true, "--root 1.root.json instead"},
	} {
		_, err := relayConfig(tc.relays, tc.root, tc.pubkey, refuse)
		var ue usageError
		if err == nil || errors.As(err, &ue) != tc.usage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q (usage error: %v)", tc.name, err, tc.want, tc.usage)
		}
	}
}

// The line of each watch sync counts that sync's failovers, not the
// watch's.
func TestWatchReportCountsEachSync(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	w := watchReport{last: t0}
	res := agent.Result{Generation: 1, Downloaded: 1, Bytes: 10}
	if got := w.line(res, nil, agent.Stats{Failovers: 2, Resumes: 1}, t0.Add(time.Second)); !strings.Contains(got, "2 failovers, 1 resumed") || !strings.Contains(got, "in 1s") {
		t.Fatalf("first sync: %q", got)
	}
	res.Generation = 2
	if got := w.line(res, nil, agent.Stats{Failovers: 2, Resumes: 1}, t0.Add(3*time.Second)); strings.Contains(got, "failover") || !strings.Contains(got, "in 2s") {
		t.Fatalf("second sync, without failovers of its own: %q", got)
	}
	if got := w.line(agent.Result{Generation: 3}, errors.New("boom"), agent.Stats{Failovers: 5, Resumes: 1}, t0.Add(4*time.Second)); !strings.Contains(got, "sync to generation 3 failed: boom") {
		t.Fatalf("failed sync: %q", got)
	}
	if got := w.line(agent.Result{Generation: 3}, nil, agent.Stats{Failovers: 6, Resumes: 1}, t0.Add(5*time.Second)); !strings.Contains(got, "1 failovers, 0 resumed") {
		t.Fatalf("sync after a failed one: %q", got)
	}
}

// relayd sync reads the progress before starting a sync only to follow
// it, and follows until a sync that finished later ends.
func TestSyncCommand(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	var (
		mu    sync.Mutex
		gets  int
		posts int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/sync" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodPost {
			posts++
			w.WriteHeader(http.StatusAccepted)
			return
		}
		gets++
		// The last sync finished at t0; after the POST, one poll shows
		// the new one running, the next it finished.
		p := admin.SyncProgress{State: admin.SyncIdle, Generation: 3, Finished: t0}
		switch {
		case posts > 0 && gets == 2:
			p = admin.SyncProgress{State: admin.SyncSyncing, Generation: 3, Target: 4, ObjectsTotal: 2, Finished: t0}
		case posts > 0 && gets > 2:
			p = admin.SyncProgress{State: admin.SyncIdle, Generation: 4, ObjectsDone: 2, ObjectsTotal: 2, Finished: t0.Add(time.Nanosecond)}
		}
		json.NewEncoder(w).Encode(p)
	}))
	defer srv.Close()
	run := func(args ...string) string {
		t.Helper()
		mu.Lock()
		gets, posts = 0, 0
		mu.Unlock()
		var out, errb bytes.Buffer
		if err := realMain(context.Background(), append([]string{"sync", "--admin", srv.URL}, args...), &out, &errb, envOf(nil)); err != nil {
			t.Fatalf("sync %q: %v (%s)", args, err, errb.String())
		}
		return out.String()
	}
	for _, tc := range []struct {
		name               string
		args               []string
		wantGets, wantPost int
		want               string
	}{
		{"start", nil, 1, 1, "state idle, live generation 3"},
		{"status", []string{"--status"}, 1, 0, "state idle"},
		{"follow", []string{"--follow"}, 3, 1, "state idle, live generation 4: 2/2 objects"},
	} {
		out := run(tc.args...)
		mu.Lock()
		g, p := gets, posts
		mu.Unlock()
		if g != tc.wantGets || p != tc.wantPost || !strings.Contains(out, tc.want) {
			t.Errorf("%s: %d GETs, %d POSTs, output %q; want %d, %d, %q", tc.name, g, p, out, tc.wantGets, tc.wantPost, tc.want)
		}
	}
}

// The console logger of the agent commands colors a terminal only.
func TestLoggerColorsOnlyATerminal(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	log, err := newLogger(logConfig{Level: "info", Format: "console"}, &b)
	if err != nil {
		t.Fatal(err)
	}
	log.Info().Str("k", "v").Msg("hello")
	if strings.Contains(b.String(), "\x1b[") || !strings.Contains(b.String(), "hello") {
		t.Fatalf("console log to a buffer: %q", b.String())
	}
	o := agentOpts{logLevel: "loud"}
	if _, err := o.logger(io.Discard); exitCode(err) != 2 || !strings.Contains(err.Error(), "--log-level") {
		t.Fatalf("--log-level loud: %v", err)
	}
}
