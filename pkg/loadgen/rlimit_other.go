//go:build !unix

package loadgen

// RaiseNoFile does nothing where there is no RLIMIT_NOFILE: the system
// bounds handles its own way.
func RaiseNoFile(need uint64) error { return nil }
