// Package digest is relayd's vocabulary for content digests: the sha256 of an
// object's bytes, how it is written ("sha256:<hex>", also the ETag form) and
// the one place that creates a hash (NewHash), so the implementation can be
// swapped without touching callers.
//
// It depends on the standard library and sha256-simd only; it knows nothing
// of stores, HTTP or catalogs.
package digest
