// Package loadgen runs many simulated agents in one process against
// relays, each a real pkg/agent with its own id, relay order, event
// stream and state, sharing a bounded pool of connections, and reports
// what they saw: syncs, failovers, the requests each relay answered, and
// with Watch how long each new generation took to reach every agent and
// how the agents' requests spread after it (requests per 100 ms: the
// effect of agent.Config.SyncJitter). RunStreams holds bare event streams
// instead (no agent, no sync): what a relay spends per stream and how
// fast it tells them all, with several processes from several loopback
// addresses to go past one process's descriptors and one address's
// stream limit. relayd loadgen is its command line
// (cmd/relayd/loadgen.go: flags only). The command raises the file
// descriptor limit a run of thousands of agents needs
// (cmd/relayd/rlimit_*.go).
package loadgen
