// Package proxycache is the on-demand cache: where a request for an object
// goes when the relay runs in proxy mode.
//
// Where does a cache miss go? Read cache.go top to bottom: it decides. A
// fresh stored object is a HIT; a stale one is revalidated upstream with a
// conditional GET (REVALIDATED when the upstream answers 304); a missing
// one is filled. Every fill and revalidation of a key goes through one
// coalescing point (Cache.join), so however many requests arrive at once,
// one request is made: to the key's owner in the group, or to the upstream
// (Cache.open). What the answer becomes is decided in Cache.runFill, step
// by step: revalidate, admitBody, stream, commit. fill.go holds the fill's
// moving parts (the in-flight state, the copy of the body, the readers
// that stream the growing temp file as the bytes arrive instead of waiting
// for the whole object); it calls nothing of cache.go.
//
// Without a catalog (or for keys it does not list) the cache is an RFC
// 9111 shared cache: the origin's end-to-end headers are stored, bounded,
// and refreshed by 304s (headers.go); freshness and storability follow
// RFC 9111 (freshness.go); the client's Cache-Control, Pragma,
// Authorization and the fields a Vary names decide whether a stored
// response may answer it, and its end-to-end fields go upstream with the
// fill it starts (request.go, WithRequest; lookup.go, ask.go); responses
// that vary are kept side by side, a few per key (variants.go). Statuses
// other than 200 pass through with their bodies and are stored where RFC
// 9111 allows; the query string is part of the key. The last byte of a
// fill is released only once the object is complete and verified, so a
// truncated or wrong object is never completed to a client; a range of an
// object the signed catalog lists is released only once the whole is
// verified (Object.VerifiedRanges). With a catalog (an Expecter) the
// cache fails closed: nothing before a verified catalog is loaded, then
// only the keys it lists unless Config.AllowUnlisted (Cache.admit, in
// expect.go); what it lists is immutable, never revalidated, whatever the
// request says. What the cache needs from the relay (Upstream, Store,
// Peers) is declared in deps.go, its Config and Stats in config.go.
//
// It does not choose upstreams (hierarchy does), own the disk layout
// (store does) or speak HTTP to clients (the content handler does).
package proxycache
