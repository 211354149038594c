package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one process the simulator started, in its own process group,
// its output in a log file.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

// procs is every process started, so that cleanup stops each one.
type procs struct {
	mu   sync.Mutex
	list []*proc
}

// start runs argv (argv[0] the program) logging to logPath. The process
// leads its own group (stopped as a group) and dies with the simulator
// (Pdeathsig) should the simulator be killed before it cleans up.
func (ps *procs) start(name, logPath string, argv ...string) (*proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	ps.list = append(ps.list, p)
	return p, nil
}

// stopAll stops every process, the newest first, each group with
// SIGTERM and, after grace, SIGKILL.
func (ps *procs) stopAll(grace time.Duration) {
	ps.mu.Lock()
	list := append([]*proc(nil), ps.list...)
	ps.mu.Unlock()
	var wg sync.WaitGroup
	for i := len(list) - 1; i >= 0; i-- {
		p := list[i]
		wg.Go(func() { p.stop(grace) })
	}
	wg.Wait()
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends p's process group: SIGTERM, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	pgid := -p.cmd.Process.Pid
	if !p.exited() {
		_ = syscall.Kill(pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	// The group may hold children even once its leader exited.
	_ = syscall.Kill(pgid, syscall.SIGKILL)
	<-p.done
}

// kill is kill -9 of the process group (a relay failing), waited for.
func (p *proc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// output waits for p to exit and returns its log.
func (p *proc) output(ctx context.Context) (string, error) {
	select {
	case <-p.done:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	b, _ := os.ReadFile(p.logPath)
	if p.err != nil {
		return string(b), fmt.Errorf("%s: %w\n%s", p.name, p.err, tail(string(b), 15))
	}
	return string(b), nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// procSample is what /proc says of a process: resident and peak
// resident memory, and CPU time.
type procSample struct {
	RSS, PeakRSS int64
	CPU          float64 // seconds, user + system
}

// sampleProc reads /proc/PID/status and /proc/PID/stat.
func sampleProc(pid int) (procSample, error) {
	var s procSample
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for line := range strings.SplitSeq(string(st), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) < 1 {
			continue
		}
		kb, _ := strconv.ParseInt(f[0], 10, 64)
		if k == "VmRSS" {
			s.RSS = kb << 10
		} else {
			s.PeakRSS = kb << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// Fields after the command (which may hold spaces) in parentheses.
	_, rest, ok := strings.Cut(string(stat), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return s, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	stt, _ := strconv.ParseFloat(f[12], 64)
	s.CPU = (ut + stt) / 100 // USER_HZ is 100 on Linux
	return s, nil
}

// Ports are handed out from below the kernel's ephemeral range (32768 and
// up on Linux): all of a fleet's addresses are chosen before its relays
// start (members join each other), and a port the kernel picked for a
// probe could meanwhile be taken by any outgoing connection (the agents
// open thousands); one below the range is taken only by a listener.
var (
	portMu   sync.Mutex
	nextPort = 21000
)

// freeAddr is a TCP port on ip that is free now and was not handed out
// before, from below the ephemeral range.
func freeAddr(ip string) (string, error) {
	portMu.Lock()
	defer portMu.Unlock()
	for ; nextPort < 32768; nextPort++ {
		addr := net.JoinHostPort(ip, strconv.Itoa(nextPort))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		l.Close()
		nextPort++
		return addr, nil
	}
	return "", fmt.Errorf("no free port left below 32768 on %s", ip)
}

var httpClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}}

// adminToken is the bearer token every relay's admin API takes
// (--admin-token-file): branch relays in namespaces serve it on the
// namespace's address, which needs one.
var adminToken string

// getBody GETs url with a 5 s bound and at most 16 MiB of body.
func getBody(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if adminToken != "" {
		req.Header.Set("Authorization", "Bearer "+adminToken)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, err
}

// poll calls ok every interval until it is true, ctx ends or timeout.
func poll(ctx context.Context, timeout time.Duration, what string, ok func() bool) error {
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, context.Cause(ctx))
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

// mkdir makes dir and its parents.
func mkdir(parts ...string) (string, error) {
	d := filepath.Join(parts...)
	return d, os.MkdirAll(d, 0o755)
}
