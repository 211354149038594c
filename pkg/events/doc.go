// Package events is the push channel down the tree: a parent relay tells
// the children and agents that opened a stream to it (GET /-/events,
// server-sent events) that a new catalog generation is live or that its
// group's relays changed. Connections are always opened by the child, so
// push crosses firewalls that allow outbound traffic only.
//
// A Hub keeps the newest event of each kind and wakes its subscribers;
// each subscriber is sent what it has not seen yet, newest only. Events
// describe state ("generation 12 is live"), not steps, so a slow or
// reconnecting subscriber that skips intermediate events loses nothing,
// and a subscriber costs O(1) memory however many events are published.
// Encode and Reader are the wire format (text/event-stream), used by the
// server, the relay's upstream client and agents; the event kinds and
// their data (wire.KindCatalog and wire.Generation, …) are pkg/wire's.
//
// Streams writes to connections the HTTP server handed over (hijacked), a
// few goroutines for all of them, so that an idle subscriber costs its
// connection and a Sub rather than two goroutines and the server's
// buffers: that is how one relay holds 10,000 agents in little memory.
//
// Streams from the network Join the hub within its Limits (in total and
// per client address, limits.go): agents are not authenticated. One
// identity holds one stream per address; a newer one replaces it and the
// old one is told so (wire.KindReplaced) — a stranger elsewhere cannot push a
// real agent off, and two relays sharing a name show up as a Conflict
// (conflicts.go). A client that stops taking what is sent is dropped at a
// heartbeat (Streams.stalled).
//
// It does not dial, retry or parse HTTP: hierarchy and agent keep streams
// open, server answers the request and hands the connection over.
package events
