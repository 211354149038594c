package loadgen

import "testing"

// TestLoadRunCountsASyncAheadOfItsAnnouncement replays the interleaving of
// the lost update: agent 0 is told of generation 1 and syncs it; agent 1,
// told of generation 1 too, syncs late and finds the relay already serving
// generation 2, before anyone is told of 2. When generation 2 is then
// announced, agent 1 (which has it) does not sync again. Both agents hold
// generation 2 once agent 0 syncs it: the run must count it as updated
// everywhere, or --stop-after-updates never stops.
func TestLoadRunCountsASyncAheadOfItsAnnouncement(t *testing.T) {
	const n = 2
	run := &loadRun{gens: map[uint64]*genTimes{}, agentGen: make([]uint64, n), agentSync: make([]uint64, n)}
	connected := func() {}
	run.notified(0, 1, n, connected)
	run.notified(1, 1, n, connected)
	run.synced(0, 1)
	run.synced(1, 2) // asked for 1, the relay served 2 already
	run.notified(0, 2, n, connected)
	run.notified(1, 2, n, connected) // the agent has 2: no sync follows
	run.synced(0, 2)
	if got := run.updatedAll(n); got != 1 {
		t.Fatalf("generations after the first updated on every agent: %d, want 1 (generation 2: %+v)", got, *run.gens[2])
	}
	if g := run.gens[2]; g.notified != n || g.updated != n {
		t.Fatalf("generation 2: notified %d, updated %d; want %d and %d", g.notified, g.updated, n, n)
	}
}
