package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/wire"
)

// outcomes records the outcomes a relay took, answering with status.
type outcomes struct {
	mu     sync.Mutex
	got    []wire.Outcome
	status int
	posts  int
}

func (o *outcomes) hook(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path != wire.OutcomePath {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.posts++
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return true
	}
	var oc wire.Outcome
	if err := json.NewDecoder(r.Body).Decode(&oc); err != nil || oc.Validate() != nil {
		w.WriteHeader(http.StatusBadRequest)
		return true
	}
	if o.status != http.StatusAccepted {
		w.WriteHeader(o.status)
		return true
	}
	o.got = append(o.got, oc)
	w.WriteHeader(http.StatusAccepted)
	return true
}

func (o *outcomes) list() ([]wire.Outcome, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]wire.Outcome(nil), o.got...), o.posts
}

func outcomeRelay(t *testing.T, status int) (*relay, *outcomes) {
	r := newRelay(t, nil, nil)
	o := &outcomes{status: status}
	r.hook = o.hook
	return r, o
}

// Report fails over from a relay that does not take it, and stops at
// an outcome the relays refuse.
func TestReportFailover(t *testing.T) {
	t.Parallel()
	k := newRepo(t)
	busy, busyGot := outcomeRelay(t, http.StatusTooManyRequests)
	good, goodGot := outcomeRelay(t, http.StatusAccepted)
	cfg := testConfig(k, t.TempDir(), busy, good)
	cfg.ID, cfg.Group = "agent-7", "branch-a"
	a := newAgent(t, cfg)
	ctx := context.Background()
	if err := a.Report(ctx, 3, wire.OutcomeFailed, "exit 1: \x1b[2Jdisk "+strings.Repeat("full ", 100)); err != nil {
		t.Fatal(err)
	}
	// The relays are tried in a random order: whichever comes first,
	// the good one takes each report, once.
	for range 4 {
		if err := a.Report(ctx, 3, wire.OutcomeFailed, "exit 1: \x1b[2Jdisk "+strings.Repeat("full ", 100)); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := goodGot.list()
	if _, n := busyGot.list(); len(got) != 5 {
		t.Fatalf("busy relay asked %d times, good relay took %d", n, len(got))
	}
	if o := got[0]; o.Agent != "agent-7" || o.Group != "branch-a" || o.Generation != 3 || len(o.Reason) != wire.MaxOutcomeReason ||
		!strings.HasPrefix(o.Reason, "exit 1: ?[2Jdisk full") {
		t.Fatalf("reported %+v", o)
	}
	if err := a.Report(ctx, 3, "done", ""); err == nil {
		t.Fatal("a bad state was reported")
	}
	// Every relay down: bounded rounds, then an error.
	bad, badGot := outcomeRelay(t, http.StatusServiceUnavailable)
	b := newAgent(t, testConfig(k, t.TempDir(), bad))
	if err := b.Report(ctx, 3, wire.OutcomeInstalled, ""); err == nil {
		t.Fatal("no relay took it, and no error")
	}
	if _, n := badGot.list(); n != reportRounds {
		t.Fatalf("%d posts, want %d rounds", n, reportRounds)
	}
}

func TestInstallExec(t *testing.T) {
	t.Parallel()
	k := newRepo(t)
	r, got := outcomeRelay(t, http.StatusAccepted)
	dir := t.TempDir()
	a := newAgent(t, testConfig(k, dir, r))
	ctx := context.Background()
	res := Result{Generation: 7, Downloaded: 1} // files changed: the step runs whatever ran before
	for _, tc := range []struct {
		name, cmd    string
		timeout      time.Duration
		state        string
		reason       string
		wantReported []string
	}{
		{"no exec", "", 0, wire.OutcomeInstalled, "", []string{"installed"}},
		{"exit 0 with env", `test "$RELAYD_GENERATION" = 7 && test "$RELAYD_DIR" = "` + dir + `"`, 0, wire.OutcomeInstalled, "", []string{"downloaded", "installed"}},
		{"exit 3", "echo progress; printf '\\n  disk full\\nmore\\n' >&2; exit 3", 0, wire.OutcomeFailed, "exit 3: disk full", []string{"downloaded", "failed"}},
		{"timeout", "sleep 30", 200 * time.Millisecond, wire.OutcomeFailed, "timeout after 200ms", []string{"downloaded", "failed"}},
	} {
		before, _ := got.list()
		state, reason, err := a.Install(ctx, res, Exec{Command: tc.cmd, Timeout: tc.timeout})
		if err != nil || state != tc.state || reason != tc.reason {
			t.Errorf("%s: %q %q %v, want %q %q", tc.name, state, reason, err, tc.state, tc.reason)
			continue
		}
		after, _ := got.list()
		var states []string
		for _, o := range after[len(before):] {
			states = append(states, o.State)
			if o.Generation != 7 || o.Reason != map[bool]string{true: tc.reason, false: ""}[o.State == wire.OutcomeFailed] {
				t.Errorf("%s: reported %+v", tc.name, o)
			}
		}
		if strings.Join(states, ",") != strings.Join(tc.wantReported, ",") {
			t.Errorf("%s: reported %v, want %v", tc.name, states, tc.wantReported)
		}
	}
}

// TestInstallOnlyWhatIsNew: the install step runs for a generation not
// installed yet, for changed files and after a failure; a sync that brought
// nothing new runs and reports nothing.
func TestInstallOnlyWhatIsNew(t *testing.T) {
	t.Parallel()
	k := newRepo(t)
	r, got := outcomeRelay(t, http.StatusAccepted)
	a := newAgent(t, testConfig(k, t.TempDir(), r))
	ctx := context.Background()
	ok, fail := Exec{Command: "true"}, Exec{Command: "exit 1"}
	for i, step := range []struct {
		res   Result
		x     Exec
		state string
	}{
		{Result{Generation: 3}, fail, wire.OutcomeFailed},                 // new: runs, fails
		{Result{Generation: 3}, ok, wire.OutcomeInstalled},                // failed before: runs again
		{Result{Generation: 3}, ok, ""},                                   // nothing new: nothing runs
		{Result{Generation: 3, Downloaded: 2}, ok, wire.OutcomeInstalled}, // files changed: runs
		{Result{Generation: 4}, ok, wire.OutcomeInstalled},                // new generation: runs
		{Result{Generation: 4}, fail, ""},                                 // nothing new: the failing command is not even run
	} {
		before, _ := got.list()
		state, _, err := a.Install(ctx, step.res, step.x)
		after, _ := got.list()
		if err != nil || state != step.state {
			t.Fatalf("step %d: state %q err %v, want %q", i, state, err, step.state)
		}
		if step.state == "" && len(after) != len(before) {
			t.Fatalf("step %d: nothing new, yet %d outcomes reported", i, len(after)-len(before))
		}
	}
}
