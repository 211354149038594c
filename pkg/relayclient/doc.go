// Package relayclient is the child side of the relay protocol, written
// once for agents (pkg/agent) and child relays (pkg/hierarchy):
//
//   - list.go: whom to ask — the group's relays learned from
//     {base}/-/relays and refreshed, in random order, relays that failed
//     lately last, the configured seeds as the last resort, fallbacks
//     kept apart;
//   - body.go: the stall guard — response headers within StallTimeout,
//     and a body that makes no progress (or drips below a floor) for
//     StallTimeout is an error;
//   - stream.go: the event-stream loop — connect, read, reconnect with
//     backoff and jitter, the longer back-off after a "replaced" stream,
//     and a relay's Retry-After.
//
// Range resume is httprange.Pin (one validity check: the same strong
// ETag and complete length), used by the callers' transfers.
//
// Everything runs on an injected clock (pkg/clock), so failover, refresh
// and reconnect timing are tested by advancing a clock.Fake, not by
// sleeping. The package does not fetch objects, verify content or decide
// what an event means: that stays with its callers.
package relayclient
