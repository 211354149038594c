package proctest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/wire"
)

// Proc is one running process started by Start (possibly behind a
// wrapper such as unshare or prlimit that execs it or waits for it).
type Proc struct {
	// Name is the process's name in logs and failures ("relayd-3").
	Name string
	// Addr is the content host:port and URL "http://"+Addr, both set by
	// WaitReady (Addr also by the caller from WaitLogAddr).
	Addr string
	URL  string

	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	waitErr error // valid once done is closed
}

// seq numbers processes so their log files have distinct names.
var seq atomic.Int64

// RelaydArgv is the command line StartRelayd runs: `bin serve` with the
// content port on 127.0.0.1:0, admin and gossip disabled and JSON logs,
// then args (a later flag overrides an earlier one).
func RelaydArgv(bin string, args ...string) []string {
	return append([]string{bin, "serve", "--listen", "127.0.0.1:0", "--admin=", "--gossip=", "--log-format", "json"}, args...)
}

// StartRelayd starts RelaydArgv(bin, args...) and waits until its
// /-/healthz answers 200.
func StartRelayd(t testing.TB, bin string, args ...string) *Proc {
	t.Helper()
	return StartRelaydIn(t, bin, "", args...)
}

// StartRelaydIn is StartRelayd with dir as the working directory.
func StartRelaydIn(t testing.TB, bin, dir string, args ...string) *Proc {
	t.Helper()
	p := Start(t, "relayd", RelaydArgv(bin, args...), nil, dir)
	p.WaitReady(t)
	return p
}

// Start starts argv in its own process group, in dir (a temp dir if
// empty), with CleanEnv plus env as its environment and stdout and
// stderr going to a log file in a temp dir. A cleanup stops the process
// (SIGTERM, then SIGKILL after 5s) and prints its log when the test
// failed.
func Start(t testing.TB, name string, argv, env []string, dir string) *Proc {
	t.Helper()
	p := &Proc{Name: fmt.Sprintf("%s-%d", name, seq.Add(1)), done: make(chan struct{})}
	p.logPath = filepath.Join(t.TempDir(), p.Name+".log")
	f, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.Dir = dir
	if dir == "" {
		p.cmd.Dir = filepath.Dir(p.logPath)
	}
	p.cmd.Env = append(CleanEnv(), env...)
	// Its own process group (signals reach its children too), and killed
	// with the test binary if that dies before its cleanups run (a
	// timeout panic, a SIGKILL), so no process outlives the tests.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Registered before the stop cleanup so it runs after it: the log is
	// complete when it is printed.
	t.Cleanup(func() {
		if t.Failed() {
			p.DumpLog(t)
		}
	})
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", argv[0], err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.Stop(t, 5*time.Second) })
	return p
}

// CleanEnv is the test's environment without RELAYD_* variables, so that
// only the flags configure the processes.
func CleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RELAYD_") {
			env = append(env, kv)
		}
	}
	return env
}

// Pid is the process id (of the wrapper, if argv started one that does
// not exec).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has ended.
func (p *Proc) Done() <-chan struct{} { return p.done }

// WaitErr is how the process ended (exec.Cmd.Wait's error); valid once
// Done is closed, nil before.
func (p *Proc) WaitErr() error {
	if !p.Exited() {
		return nil
	}
	return p.waitErr
}

// Signal sends sig to the process group.
func (p *Proc) Signal(sig syscall.Signal) {
	if p.cmd.Process == nil || p.Exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
}

// Stop ends the process: SIGTERM, then SIGKILL after timeout.
func (p *Proc) Stop(t testing.TB, timeout time.Duration) {
	if p.Exited() {
		return
	}
	p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(timeout):
		t.Logf("%s did not stop within %v of SIGTERM; killing it", p.Name, timeout)
	}
	p.Kill(t)
}

// Kill sends SIGKILL to the process group and waits for the process.
func (p *Proc) Kill(t testing.TB) {
	p.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s still running 10s after SIGKILL", p.Name)
	}
}

// WaitExit waits up to d for the process to exit by itself and returns
// whether it did and how.
func (p *Proc) WaitExit(d time.Duration) (exited bool, err error) {
	select {
	case <-p.done:
		return true, p.waitErr
	case <-time.After(d):
		return false, nil
	}
}

// Log returns the process's output so far.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// DumpLog writes the last 64 KiB of the process's output to the test log.
func (p *Proc) DumpLog(t testing.TB) {
	s := p.Log()
	const max = 64 << 10
	if len(s) > max {
		s = "…(cut)…\n" + s[len(s)-max:]
	}
	t.Logf("---- %s log (%s) ----\n%s---- end of %s log ----", p.Name, p.logPath, s, p.Name)
}

// WaitReady finds the content address in the log ("content listening"),
// sets Addr and URL, and polls /-/healthz until it answers 200.
func (p *Proc) WaitReady(t testing.TB) {
	t.Helper()
	p.Addr = p.WaitLogAddr(t, "content listening")
	p.URL = "http://" + p.Addr
	c := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	Eventually(t, 20*time.Second, p.Name+" /-/healthz", func() error {
		if p.Exited() {
			return StopErr{Err: fmt.Errorf("%s exited early: %v", p.Name, p.waitErr)}
		}
		resp, err := c.Get(p.URL + wire.HealthzPath)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}

// WaitLogAddr waits for the JSON log line whose message is msg ("content
// listening", "admin listening") and returns its addr field.
func (p *Proc) WaitLogAddr(t testing.TB, msg string) string {
	t.Helper()
	var addr string
	Eventually(t, 20*time.Second, p.Name+" logs "+msg, func() error {
		if p.Exited() {
			return StopErr{Err: fmt.Errorf("%s exited early: %v\n%s", p.Name, p.waitErr, p.Log())}
		}
		for _, m := range LogLines(p.Log()) {
			if m["message"] == msg {
				if a, ok := m["addr"].(string); ok {
					addr = a
					return nil
				}
			}
		}
		return fmt.Errorf("no %q line yet", msg)
	})
	return addr
}

// LogLines parses the JSON log lines of s, skipping others.
func LogLines(s string) []map[string]any {
	var out []map[string]any
	for line := range strings.SplitSeq(s, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// CountRequests counts the access log lines of a relayd for method and
// escaped path.
func CountRequests(logText, method, path string) int {
	n := 0
	for _, m := range LogLines(logText) {
		if m["message"] == "request" && m["method"] == method && m["path"] == path {
			n++
		}
	}
	return n
}

// Run runs argv to completion in a temp dir with CleanEnv, killed after
// timeout, and returns its output: for one-shot commands (relayd keygen,
// publish, fetch).
func Run(t testing.TB, timeout time.Duration, argv ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.Env = CleanEnv()
	cmd.Dir = t.TempDir()
	err = cmd.Run()
	return o.String(), e.String(), err
}
