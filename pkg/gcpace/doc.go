// Package gcpace paces a long-running relayd's garbage collector so that
// the heap's headroom (what the collector lets garbage take before it
// runs) stays bounded in bytes, not in proportion to the live heap.
//
// A relay's live heap is small (about 10 MiB) until it holds many push
// streams; GOGC=400 then keeps collections rare (at Go's default of 100
// they cost about 10 % of small-hit throughput). But headroom in
// proportion is what made an idle stream cost 13 KiB of RSS: every stream
// adds about 1.3 KiB of live heap, and every connection leaves about
// 10 KiB of garbage behind (net/http's buffers of a connection taken
// over), so at GOGC=400 the heap settles near five times the live heap.
// Run lowers GOGC as the live heap grows, down to 100, so that the
// headroom stays at most Config.MaxHeadroom (40 MiB: what 400 gives a
// 10 MiB heap) — small relays collect as before, and a relay holding
// 50,000 streams spends on garbage what a small one does.
//
// With a memory budget (Config.MemoryLimit, relayd's --memory-limit) it
// is the process's soft memory limit, and while the live heap is at most
// half of it the collector's percentage is off: a relay serving hits
// (live heap 3–10 MiB, every hit leaving about 1 KiB of garbage) then
// collects once per limit's worth of garbage instead of every 4–5 live
// heaps, and never holds more than the budget. Beyond half, the pacing
// above comes back under the limit, so a heap grown near the limit is not
// collected back to back (what a limit alone does). Without a budget no
// limit is set: the relay's needs are not known in advance. A GOGC set in
// the environment wins (Run does nothing), and a GOMEMLIMIT one is left
// to the runtime.
package gcpace
