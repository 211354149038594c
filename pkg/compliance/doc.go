// Package compliance answers "how many of my agents are on the generation
// they should be on?" for the subtree of any relay (issue 15), from the
// reports relays already send their parents: each report carries its
// relay's own agents' outcomes (wire.Outcomes), summed by generation and
// state, never by agent. Compute folds them per group and per ring of the
// held rollout gates; GET /v1/compliance and `relayd compliance` show the
// result, and the relayd_compliance_agents{ring,state} gauges export it.
//
// # What each state means
//
// A group's target is the Open generation of its ring (wire.Gates.RingOf
// of the group's name); without gates it is the newest generation any
// relay of the subtree holds. Each known agent counts in exactly one of:
//
//   - on_target: its newest report is "installed" of the target or newer;
//   - failed: its newest report is "failed" of the target or newer;
//   - behind: its newest report is "downloaded" (an install under way), or
//     of a generation older than the target;
//   - not_reporting: the relay knows it (it holds an event stream, or
//     reported of a generation older than the four a relay sums up) but
//     has no counted report; and every agent of a relay whose own report
//     is older than the stale age (ComputeStale; a node passes the age at
//     which its tree shows a relay gone; StaleAfter for Compute).
//
// reporting = agents − not_reporting: the denominator of the rollout
// engine's success and failure rates. A relay whose report reached the
// caller by several paths (a branch relay reports to every relay of its
// parent group) counts once, by its newest report.
//
// # What it does not do
//
// It does not see single agents: an agent is counted under the group of
// the relay it reports to (agents normally take their branch relay's
// group), once, at that relay; an agent that moved relays may briefly count
// at both, until its entry at the old relay expires (7 days) or is evicted.
// It does not fetch anything: the caller hands it the reports it holds.
package compliance
