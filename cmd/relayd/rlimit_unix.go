//go:build unix

package main

import (
	"fmt"
	"syscall"
)

// raiseNoFile raises the soft RLIMIT_NOFILE to the hard limit when need
// descriptors do not fit, and fails when the hard limit is too low.
func raiseNoFile(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("loadgen: getrlimit: %w", err)
	}
	if lim.Cur >= need {
		return nil
	}
	if lim.Max < need {
		return fmt.Errorf("loadgen: %d agents need about %d file descriptors, the hard limit is %d: raise it (ulimit -Hn, LimitNOFILE=)", need-256, need, lim.Max)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("loadgen: raise the file descriptor limit to %d: %w", lim.Max, err)
	}
	return nil
}
