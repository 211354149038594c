// Package wire is the relay protocol in one place: every header relays
// and agents exchange, every reserved /-/ path, the query parameters of
// the event stream, the event kinds, and the documents that cross
// between relays and agents (the /-/relays list, the catalog event's
// generation, a child's report) with their bounded decoders.
//
// Both sides of every conversation import their names from here, so a
// reader finds the whole protocol in four files: headers.go (headers and
// query parameters), paths.go (the /-/ endpoints), events.go (event
// kinds and their data, the /-/relays document) and report.go with
// decode.go (what a child reports to its parents, and how a parent reads
// it off the network).
//
// It imports only the standard library (a test checks), and it does not
// serve, fetch or sign anything: that is pkg/server, pkg/agent,
// pkg/hierarchy and pkg/treeauth. The cache results sent in CacheHeader
// are pkg/object's (Hit, Miss, …), which sets them.
package wire
