// Package proxycache is the on-demand cache: where a request for an object
// goes when the relay runs in proxy mode.
//
// Read cache.go top to bottom to follow a request: a fresh stored object is
// a HIT; a stale one is revalidated upstream with a conditional GET; a
// missing one is filled. Every fill and revalidation of a key goes through
// one coalescing point (Cache.join), so however many requests arrive at
// once, one upstream request is made, and every requester streams the bytes
// from the growing temp file as they arrive (fill.go) instead of waiting
// for the whole object.
//
// Freshness for upstreams without a catalog follows RFC 9111 (freshness.go).
// The last byte of a fill is released only once the object is complete and
// verified, so a truncated or wrong object is never completed to a client;
// a range of an object the signed catalog lists is released only once the
// whole is verified (Object.VerifiedRanges). With a catalog (an Expecter)
// the cache fails closed: nothing before a verified catalog is loaded,
// then only the keys it lists unless Config.AllowUnlisted (Cache.admit).
//
// It does not choose upstreams (hierarchy does), own the disk layout
// (store does) or speak HTTP to clients (the content handler does).
package proxycache
