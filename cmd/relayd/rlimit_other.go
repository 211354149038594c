//go:build !unix

package main

// raiseNoFile does nothing where there is no RLIMIT_NOFILE: Windows has
// no per-process limit on open handles a user would need to raise.
func raiseNoFile(uint64) error { return nil }
