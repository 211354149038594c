// Package catalog is the signed list of every object an origin publishes:
// path, size, sha256, kind, platform and version, under a monotonically
// increasing generation. It is what lets agents and relays trust the bytes
// without trusting the relays that carry them.
//
// The file (served at /-/catalog) is one header line naming the signature
// algorithm and carrying the ed25519 signature, followed by the exact JSON
// bytes that were signed:
//
//	relayd-catalog-v1 ed25519 <base64 signature>\n
//	{"generation":7,"published":"…","objects":[{"path":…},…]}
//
// Parse verifies the signature before it decodes a single byte of JSON,
// and rejects anything malformed, oversized or unsafe (paths with "..",
// absolute paths, duplicates, negative sizes). Read takes a catalog file
// off the network within a byte limit (read.go: DefaultMaxBytes, the
// relays' catalog-max and the agents' MaxCatalogBytes), allocating no more
// than the limit whatever the sender does. This package knows nothing
// of HTTP, stores or syncing; keys.go reads and writes the key files and
// publish.go builds a catalog from a directory.
package catalog
