// Package hostile is relayd's hostile test suite: real relayd processes on
// 127.0.0.1 attacked the way a stranger, a malicious agent or a broken or
// malicious parent would, each test one row of issue 11's table (a hole
// found from outside at 8d8f9f8) that must stay closed.
//
// The attackers are evilrelay (./evilrelay: a malicious relay or origin
// serving a really published tree with an endless catalog, endless or
// dripping bodies, tampered bytes, mismatched 206s, a missing catalog or
// cut bodies) and clients in the test process (report floods, stream
// floods, identity theft, garbage gossip). TestMain builds both binaries
// once; processes are run with internal/proctest.
//
// The TUF spec's attacks (tuf_*_test.go) run a real `relayd agent sync`
// (or a mirror relay) against evilrelay serving a genuine repository that
// the test rewrites while it runs: metadata forged with go-tuf's metadata
// API, signed by the genuine keys or an attacker's.
//
// The package runs in `make test` (go test ./...), so each test keeps
// its floods bounded in count and time: the whole package stays well
// under two minutes on two cores. Bench-sized floods with figures live in
// scripts/bench (the hostile scenario), not here.
package hostile
