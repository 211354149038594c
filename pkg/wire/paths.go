package wire

import "strings"

// Prefix is the reserved path prefix of the relay API: no object key
// lives under it.
const Prefix = "/-/"

// Endpoints of a relay's content port, relative to its base URL.
const (
	// HealthzPath answers 200 while the process serves.
	HealthzPath = "/-/healthz"
	// ReadyzPath answers 200 when the relay should get traffic.
	ReadyzPath = "/-/readyz"
	// RelaysPath serves the Relays document: the group's healthy relays.
	RelaysPath = "/-/relays"
	// EventsPath is the push stream (server-sent events of the kinds in
	// events.go).
	EventsPath = "/-/events"
	// ReportPath takes a child relay's POST of its Report.
	ReportPath = "/-/report"
	// BlobPrefix, followed by 64 hex digits of a SHA-256, serves a blob to
	// a group peer that syncs (BlobPathHeader names its catalog path).
	BlobPrefix = "/-/blob/"
)

// BlobPath returns the path of the blob whose digest is hex (64 hex
// digits).
func BlobPath(hex string) string { return BlobPrefix + hex }

// Reserved reports whether an object key (a cleaned path without its
// leading slash, as pkg/cleanpath returns it) falls under Prefix.
func Reserved(key string) bool {
	return key == Prefix[1:len(Prefix)-1] || strings.HasPrefix(key, Prefix[1:])
}

// IsAPI reports whether a request path (with its leading slash) is under
// Prefix.
func IsAPI(path string) bool { return strings.HasPrefix(path, Prefix) }
