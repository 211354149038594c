package node

import "syscall"

// raiseNoFile raises the soft RLIMIT_NOFILE to the hard limit and returns
// the soft limit in force and the one found. Go's runtime already does the
// same at start (since Go 1.19); this makes it explicit, reports the value
// for the connection budget, and holds where the runtime did not raise it.
func raiseNoFile() (now, before uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, err
	}
	before = lim.Cur
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return before, before, err
		}
	}
	return lim.Cur, before, nil
}
