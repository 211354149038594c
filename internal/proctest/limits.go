package proctest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// RSS is the resident set size of process pid in bytes (VmRSS in
// /proc/<pid>/status).
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest) // "123456 kB"
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("pid %d: odd VmRSS line %q", pid, sc.Text())
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("pid %d: VmRSS: %w", pid, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("pid %d: no VmRSS in /proc/%d/status (a zombie?)", pid, pid)
}

// WithNofile returns argv run with RLIMIT_NOFILE set to n (soft and hard)
// by prlimit(1) from util-linux, for Start. The test is skipped when
// prlimit is not installed.
//
// Why a wrapper: the hard limit has to be lowered in the child before it
// runs (every Go program raises its soft limit to the hard one at start,
// and relayd does so explicitly), and os/exec has no hook between fork
// and exec. Lowering the hard limit of the test process around Start
// would be irreversible for a non-root test and would hit every other
// goroutine of the test; prlimit on the child's pid after Start races
// with the child's own start-up. prlimit(1) sets the limits on itself and
// execs argv, so the pid, the process group and Pdeathsig stay those of
// the started program.
func WithNofile(t testing.TB, n uint64, argv []string) []string {
	t.Helper()
	pl, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skipf("prlimit(1) (util-linux) is needed to lower RLIMIT_NOFILE: %v", err)
	}
	return append([]string{pl, fmt.Sprintf("--nofile=%d:%d", n, n), "--"}, argv...)
}

// FreeTCPUDPAddr returns a 127.0.0.1 address whose port was free for both
// TCP and UDP a moment ago, for a process that binds both on one port
// (memberlist's gossip address).
func FreeTCPUDPAddr(t testing.TB) string {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		return addr
	}
	t.Fatal("no port free for both TCP and UDP on 127.0.0.1")
	return ""
}
