// Package mirror keeps a complete, verified copy of the upstream catalog
// (or the part of it a filter selects) on disk, in generations.
//
// A sync (Mirror.Sync in sync.go, in three steps: plan, fetch, goLive)
// fetches the upstream's signed catalog, downloads every selected object
// whose bytes the store does not hold yet (dedup by digest, bounded
// parallelism, resuming partial downloads with Range, only from the
// representation pinned with the partial file (httprange.Pin)) and
// verifies each. Only when all are on disk and verified does the mirror
// switch, atomically, to serving the new generation; until then it serves
// the previous one whole. After the switch, blobs no live generation
// references are collected.
//
// The same machinery follows the catalog for a proxy relay: with a filter
// it mirrors some kinds (security/** always local) and gives the proxy
// cache the digests to verify everything else against.
//
// It does not choose upstreams (hierarchy does) or speak HTTP to clients.
package mirror
