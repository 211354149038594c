// Package mirror keeps a complete, verified copy of the upstream tree (or
// the part of it a filter selects) on disk, in generations.
//
// A sync (Mirror.Sync in sync.go, in four steps: update, plan, fetch,
// goLive) updates the relay's TUF client (pkg/tufclient) through the
// upstream, which verifies the tree's metadata (root chain, timestamp,
// snapshot, targets and delegations, expiry, rollback) and gives the
// object list of the newest generation; it downloads every selected object
// whose bytes the store does not hold yet (dedup by digest, bounded
// parallelism, resuming partial downloads with Range, only from the
// representation pinned with the partial file (httprange.Pin)) and
// verifies each. Only when all are on disk and verified does the mirror
// switch, atomically, to serving the new generation; until then it serves
// the previous one whole. After the switch, blobs no live generation
// references are collected.
//
// The live generation keeps the raw timestamp it was verified with
// (live.go): the relay serves it at /-/tuf/timestamp.json, and its
// versioned metadata from the TUF client, so children verify what this
// relay holds. A new timestamp of the same generation (the origin re-signs
// it) replaces it without moving an object. Past its expiry the live
// generation still serves; the relay says since when.
//
// The same machinery follows the catalog for a proxy relay: with a filter
// it mirrors some kinds (security/** always local) and gives the proxy
// cache the digests to verify everything else against.
//
// It does not choose upstreams (hierarchy does) or speak HTTP to clients.
package mirror
