// Package tufrepo is the publishing side of relayd's TUF repository
// (The Update Framework, spec 1.0, through go-tuf/v2's metadata API): it
// writes TREE/-/tuf/ for a content tree — N.root.json (every version, kept
// for ever), N.targets.json, N.<role>.json for the delegated roles and
// their hashed bins, N.snapshot.json and timestamp.json, with consistent
// snapshots — and keeps it: key rings per role, thresholds, path
// delegations to team roles, staging of metadata that lacks signatures
// (sign on another machine, combine, commit), root rotation and the
// timestamp's re-signing by the origin.
//
// Layout of the targets: top-level targets lists nothing itself; it
// delegates by path, in order and terminating, to the team roles the
// operator configured (Delegate) and last to "rest" (every path, signed
// by the targets keys). A leaf role with many targets delegates to TAP 15
// hashed bins (succinct_roles, "<role>-bin-NNN", signed by the role's
// keys), so one changed object re-signs one small bin. Snapshot and
// timestamp name versions only (no lengths or hashes): adding a
// signature to a staged file does not change what they sign.
//
// The generation is the snapshot version: it moves only when some
// targets metadata changed (or the snapshot was re-signed because it
// neared its expiry or its keys rotated). Everything read from the tree is
// verified with go-tuf before it is used; nothing here re-implements what
// go-tuf verifies. This package knows nothing of HTTP; the verifying side
// is pkg/tufclient, and both define a target through pkg/catalog
// (catalog.TargetFile).
package tufrepo
