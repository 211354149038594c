package proctest

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStartLogStop(t *testing.T) {
	p := Start(t, "sh", []string{"sh", "-c", `echo '{"message":"content listening","addr":"127.0.0.1:9"}'; echo '{"message":"request","method":"GET","path":"/a"}'; exec sleep 30`}, nil, "")
	if got := p.WaitLogAddr(t, "content listening"); got != "127.0.0.1:9" {
		t.Fatalf("WaitLogAddr = %q", got)
	}
	if n := CountRequests(p.Log(), "GET", "/a"); n != 1 {
		t.Fatalf("CountRequests = %d, want 1", n)
	}
	if p.Exited() || p.WaitErr() != nil {
		t.Fatal("exited early")
	}
	p.Stop(t, 5*time.Second)
	if !p.Exited() {
		t.Fatal("still running after Stop")
	}
	var ee interface{ ExitCode() int }
	if !errors.As(p.WaitErr(), &ee) {
		t.Fatalf("WaitErr = %v, want an exit error (killed by SIGTERM)", p.WaitErr())
	}
}

func TestWithNofile(t *testing.T) {
	p := Start(t, "sleep", WithNofile(t, 1234, []string{"sleep", "30"}), nil, "")
	var limits string
	Eventually(t, 5*time.Second, "sleep to run under prlimit", func() error {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.Pid()))
		if err != nil {
			return StopErr{Err: err}
		}
		if !strings.HasPrefix(string(b), "sleep\x00") {
			return fmt.Errorf("cmdline %q: not exec'ed yet", b)
		}
		b, err = os.ReadFile(fmt.Sprintf("/proc/%d/limits", p.Pid()))
		limits = string(b)
		return err
	})
	for line := range strings.SplitSeq(limits, "\n") {
		if strings.HasPrefix(line, "Max open files") {
			if f := strings.Fields(line); len(f) < 5 || f[3] != "1234" || f[4] != "1234" {
				t.Fatalf("limits line %q, want 1234 1234", line)
			}
			rss, err := RSS(p.Pid())
			if err != nil || rss <= 0 {
				t.Fatalf("RSS = %d, %v", rss, err)
			}
			p.Signal(syscall.SIGKILL)
			if exited, _ := p.WaitExit(10 * time.Second); !exited {
				t.Fatal("not dead 10s after SIGKILL")
			}
			return
		}
	}
	t.Fatalf("no open-files line in %q", limits)
}

func TestRSSSelf(t *testing.T) {
	before, err := RSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 64<<20)
	for i := range b {
		b[i] = 1
	}
	after, err := RSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 60<<20 {
		t.Fatalf("RSS grew by %d bytes after touching 64 MiB", after-before)
	}
	_ = b[len(b)-1]
	if _, err := RSS(-1); err == nil {
		t.Fatal("RSS(-1): no error")
	}
}
