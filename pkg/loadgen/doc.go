// Package loadgen runs many simulated agents in one process against
// relays, each a real pkg/agent with its own id, relay order, event
// stream and state, sharing a bounded pool of connections, and reports
// what they saw: syncs, failovers, the requests each relay answered, and
// with Watch how long each new generation took to reach every agent.
// relayd loadgen is its command line (cmd/relayd/loadgen.go: flags only).
// The command raises the file descriptor limit a run of thousands of
// agents needs (cmd/relayd/rlimit_*.go).
package loadgen
