// Package proctest runs real processes for end-to-end tests: it builds a
// binary once (Build, for a TestMain), starts it in its own process group
// with its output in a log file (Start, StartRelayd), stops it with the
// test (SIGTERM, then SIGKILL), reads its log (Log, LogLines,
// CountRequests), its resident memory (RSS) and runs it under a lower
// open-file limit (WithNofile). Eventually and Consistently poll a
// condition instead of sleeping a fixed time.
//
// It is shared by test/e2e and test/hostile. It holds no test-specific
// fixtures (in-test origins, clients, data): those stay with the tests
// that use them. It is Linux-only in practice: process groups, Pdeathsig,
// /proc and prlimit(1).
package proctest
