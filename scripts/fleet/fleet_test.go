package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relayd/relayd/internal/proctest"
)

// small is the configuration make test runs: 8 relays, 2,000 agents.
var small = []string{"--relays", "1,1,2,4", "--agents", "2000", "--kills", "2", "--objects", "8", "--deadline", "3m"}

func buildRelayd(t *testing.T) string {
	t.Helper()
	bin, err := proctest.Build(t.TempDir(), "github.com/relayd/relayd/cmd/relayd")
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// runFleet runs the simulator with args under TMPDIR tmp and decodes
// the report file name into v; it returns what the run printed.
func runFleet(t *testing.T, tmp string, args []string, name string, v any) *bytes.Buffer {
	t.Helper()
	t.Setenv("TMPDIR", tmp)
	rep := t.TempDir()
	c, err := parseConfig(append([]string{"--relayd", buildRelayd(t), "--report", rep}, args...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), c, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	b, err := os.ReadFile(filepath.Join(rep, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
	return &out
}

// TestSmallFleet runs the whole scenario at the small size: every agent
// synced both generations, each object left the origin once, and the
// temporary root is gone afterwards.
func TestSmallFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 8 relays and 2,000 agents (about 30 s)")
	}
	tmp := t.TempDir()
	var r report
	out := runFleet(t, tmp, small, "fleet.json", &r)
	if len(r.Publishes) != 2 {
		t.Fatalf("%d publishes in the report, want 2\n%s", len(r.Publishes), out.String())
	}
	for _, p := range r.Publishes {
		if p.Synced != 2000 || p.LastSyncedMS <= 0 || p.SlowestBranch == "" {
			t.Errorf("generation %d: %d agents synced (want 2000), last synced %v ms, slowest %q", p.Generation, p.Synced, p.LastSyncedMS, p.SlowestBranch)
		}
	}
	if len(r.Publishes[1].Killed) != 2 {
		t.Errorf("killed %v, want 2 relays", r.Publishes[1].Killed)
	}
	// Each object leaves the origin once (metadata is the rest).
	if o := r.Origin; o.BytesPerObject < 1 || o.BytesPerObject > 1.1 {
		t.Errorf("origin bytes per object %.3f (%d served for %d published), want 1.00", o.BytesPerObject, o.ServedBytes, o.ObjectBytes)
	}
	if len(r.PerRelay) != 8 || r.PerRelay[1].PeakRSS == 0 || r.PerRelay[1].CPUSeconds == 0 {
		t.Errorf("per relay: %+v", r.PerRelay)
	}
	assertClean(t, tmp, "")
}

// TestInterruptCleansUp interrupts a run while its agents connect (with
// --netns when run as root) and checks that no process, namespace or
// directory it made is left.
func TestInterruptCleansUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts relays and agents")
	}
	relayd := buildRelayd(t)
	fleetBin, err := proctest.Build(t.TempDir(), "github.com/relayd/relayd/scripts/fleet")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	args := append([]string{"--relayd", relayd, "--report", t.TempDir()}, small...)
	if os.Geteuid() == 0 {
		args = append(args, "--netns")
	}
	cmd := exec.Command(fleetBin, args...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var log []string
	nsID := ""
	deadline := time.After(2 * time.Minute)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("fleet ended before its agents started:\n%s", strings.Join(log, "\n"))
			}
			log = append(log, l)
			if _, id, ok := strings.Cut(l, "--netns: namespaces relayd-fleet-"); ok {
				nsID, _, _ = strings.Cut(id, "-")
			}
			if strings.Contains(l, "loadgen processes over") {
				break wait
			}
		case <-deadline:
			t.Fatalf("no agents after 2 minutes:\n%s", strings.Join(log, "\n"))
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for l := range lines {
		log = append(log, l)
	}
	err = cmd.Wait()
	if err == nil {
		t.Errorf("an interrupted run exited 0")
	}
	text := strings.Join(log, "\n")
	if !strings.Contains(text, "fleet: cleaned up") {
		t.Errorf("no cleanup line:\n%s", text)
	}
	// Root without the right to make namespaces (a container) runs on
	// loopback and says so.
	if os.Geteuid() == 0 && nsID == "" && !strings.Contains(text, "--netns skipped") {
		t.Errorf("--netns as root made no namespaces:\n%s", text)
	}
	assertClean(t, tmp, nsID)
}

// assertClean: tmp (the runs' TMPDIR) is empty, no process has a
// command line naming a path under it, and no namespace or link of the
// run (nsID) is left.
func assertClean(t *testing.T, tmp, nsID string) {
	t.Helper()
	if ents, _ := os.ReadDir(tmp); len(ents) > 0 {
		t.Errorf("left in TMPDIR: %v", ents)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte(tmp)) {
			t.Errorf("process left: %s: %s", p, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		}
	}
	if nsID == "" {
		return
	}
	for _, argv := range [][]string{{"ip", "netns", "list"}, {"ip", "-o", "link"}} {
		out, _ := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if strings.Contains(string(out), "relayd-fleet-"+nsID) || strings.Contains(string(out), "rf"+nsID) {
			t.Errorf("%s still lists the run's %s:\n%s", strings.Join(argv, " "), nsID, out)
		}
	}
}

// TestStreams runs --streams small: one relay holds every stream from
// three loadgen processes, the report has its RSS per stream and the
// publish's fan-out, and nothing is left behind.
func TestStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 2 relays and 3 loadgens")
	}
	tmp := t.TempDir()
	var r streamsReport
	out := runFleet(t, tmp, []string{"--streams", "300", "--streams-settle", "1s", "--deadline", "2m"}, "streams.json", &r)
	if r.Connected != 300 || r.Procs != 3 || r.RSSMiB <= 0 || r.PerStreamKiB <= 0 || r.PublishToLastMS <= 0 || len(r.LoadgenLines) != 3 {
		t.Errorf("report %+v\n%s", r, out.String())
	}
	assertClean(t, tmp, "")
}
