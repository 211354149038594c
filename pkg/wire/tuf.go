package wire

import "regexp"

// The TUF repository of the tree (issue 13), as every node serves it and
// a published tree holds it: TUFPrefix + a served name. `{relay}/-/tuf/`
// is a stock TUF client's metadata URL.
const (
	// TUFPrefix is the path of the metadata: /-/tuf/<name>.
	TUFPrefix = "/-/tuf/"
	// TimestampName is the one metadata file that is not versioned: it
	// changes in place and is always revalidated (Cache-Control: no-cache).
	TimestampName = "timestamp.json"
)

// tufName is what a served name may be: N.root.json, N.snapshot.json,
// N.targets.json, N.<delegated role>.json (consistent snapshots),
// timestamp.json and the rollout gates (GatesName).
var tufName = regexp.MustCompile(`^([1-9][0-9]{0,18}\.(root|snapshot|targets|[a-z0-9][a-z0-9-]{0,63})\.json|timestamp\.json|rollout\.json)$`)

// TUFName reports whether name is a name served under TUFPrefix; anything
// else there is 404.
func TUFName(name string) bool { return len(name) <= 90 && tufName.MatchString(name) }

// TUFPath returns the path of the metadata file name.
func TUFPath(name string) string { return TUFPrefix + name }
