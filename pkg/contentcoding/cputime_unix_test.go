//go:build unix

package contentcoding_test

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user + system) the process has used: the
// benchmarks report CPU per GB, which a busy machine does not inflate the
// way it inflates wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
