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
// keys), so one changed object re-signs one small bin.
//
// Signed lengths bound what a client reads: timestamp.json gives the
// length and sha256 of the snapshot it names, and the snapshot the length
// of the top-level targets and of each leaf role (not of the bins: their
// lengths would grow the snapshot every client fetches; a client reads a
// bin within its own cap). A file staged short of signatures has no
// final length yet: the snapshot names it by version only (its length
// comes with its next version), and a staged snapshot's timestamp gives
// its version only until the origin re-signs the timestamp
// (RefreshTimestamp always adds length and hash).
//
// Staged rollouts (gates.go): a root may list the extra top-level role
// "rollout" (Init, Rotate), whose online key signs rollout.json, the gates
// of a rollout (SignGates); PinOf names a generation in them, and prune
// keeps the metadata of every generation the gates open a ring at.
//
// The generation is the snapshot version: it moves only when some
// targets metadata changed (or the snapshot was re-signed because it
// neared its expiry or its keys rotated). Everything read from the tree is
// verified with go-tuf before it is used; nothing here re-implements what
// go-tuf verifies. This package knows nothing of HTTP; the verifying side
// is pkg/tufclient, and both define a target through pkg/catalog
// (catalog.TargetFile).
package tufrepo
