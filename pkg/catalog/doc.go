// Package catalog is the verified view of what an origin publishes: every
// object with its path, size, sha256, kind, platform and version, under a
// generation (the TUF snapshot version). It is what lets agents and relays
// trust the bytes without trusting the relays that carry them.
//
// The signed form is the TUF repository of pkg/tufrepo, verified by
// pkg/tufclient: target.go is the one definition of a target (TargetFile,
// FromTarget, Custom), and New builds the Catalog a verified generation
// lists, rejecting anything unsafe (paths with "..", absolute or reserved
// paths, duplicates, negative sizes). Read takes a metadata file off the
// network within a byte limit (read.go: DefaultMaxBytes, the relays'
// catalog-max and the agents' MaxCatalogBytes), allocating no more than
// the limit whatever the sender does. This package knows nothing of HTTP,
// stores or syncing; keys.go reads and writes the key files and scan.go
// lists and hashes a tree to publish.
package catalog
