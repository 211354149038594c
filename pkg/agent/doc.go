// Package agent is the client side of relayd, for the endpoint software
// that vendors build: it fetches objects from a group's relays and keeps a
// directory up to date with the newest catalog the published tree's TUF
// metadata describes.
//
// Relays are not trusted. An Agent learns the group's relays from
// GET /-/relays (bootstrap URLs stay the last resort), tries them in an
// order of its own (random per agent, so a group's load spreads), and moves
// to the next relay on a connect error, a 5xx, a stall, a redirect to
// another host, or bytes that do not match the catalog. A broken download
// goes on from the next relay with Range and If-Range, only with a 206 of the
// catalog's object (its digest ETag and size, httprange.Pin); when every relay has
// failed it waits with exponential backoff and jitter, within a total
// retry budget.
//
// It is a TUF client (pkg/tufclient, on go-tuf): from a trusted initial
// root (Config.Root, the repository's 1.root.json) it walks the root chain,
// then timestamp, snapshot, targets and the delegated roles, fetched from
// the relays at /-/tuf/, and refuses what is expired, rolled back, signed
// by too few keys or of mixed generations. The timestamp and the root
// chain come from the relay being tried (a relay that is behind, frozen or
// forged fails as a whole, and the next is tried); the versioned files the
// timestamp and snapshot pin come from it or, when it fails, from another
// relay of the group. The metadata it trusts is kept
// in DIR/.relayd-agent/tuf, so a restarted agent cannot be rolled back
// either. Expired metadata installs nothing: the error says since when.
// The catalog is the verified targets; the generation is the snapshot
// version. It checks every object's length and sha256 against them while
// it streams (a body longer than the targets say is cut), and
// writes each file to a temporary name in the same directory, fsyncs and
// renames it: a killed agent never leaves a file that looks complete (on
// Windows too: internal/atomicfile). A catalog path is turned into a file
// name with cleanpath.LocalPath, which refuses on every system what one of
// them would read as another name ("a:b", "nul.txt", "a."): Sync skips
// those, Fetch refuses them. Of paths that differ only in case, Sync writes
// the first in catalog order.
//
// Fetch gets named objects, Sync brings a directory to the newest catalog
// (only what changed; the digests of files already there are cached by
// size and modification time), Watch keeps a push stream (GET /-/events)
// open to one relay and syncs whenever it announces a newer generation.
// The relay list, the stall guard and the stream's reconnect loop are
// pkg/relayclient's, shared with child relays, on Config.Clock.
//
// It does not serve anything, keep partial downloads across restarts, or
// delete files the catalog no longer lists: a vendor's installer decides
// what to do with them.
package agent
