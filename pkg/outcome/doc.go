// Package outcome keeps what a relay's own agents reported of their
// installs (POST /-/outcome, issue 15): one entry per agent, its newest
// report, in a table bounded by count (the oldest report is evicted), by
// age (entries older than MaxAge are dropped) and per client address (an
// address holds at most PerAddr agents, so one host cannot fill the table
// with made-up agent ids). Summary folds the table into the bounded
// wire.Outcomes a relay's report carries to its parents.
//
// The reports are unauthenticated: an agent id is what the agent says,
// and a client may report for another id. The bounds make that cost what
// the limits allow; the counts are a fleet's self-reports, not proof.
// It does not persist: after a restart a relay knows the agents that
// report again or hold an event stream.
package outcome
