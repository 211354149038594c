// Package cleanpath turns the escaped path of a request URL into the one
// canonical object key relayd stores and routes by, and turns a key back into
// an escaped path for requests to upstreams and peers.
//
// A key is the request path with its leading slash removed, percent-decoded
// exactly once: "/a%21b" and "/a!b" are both the key "a!b", while "/%252e" is
// the key "%2e" (a literal percent sign, not a dot). Because %2F decodes to a
// slash, "/a%2Fb" and "/a/b" are the same object.
//
// Key refuses, with ErrBadPath, everything that could name something other
// than a file below the cache root or that two platforms could read
// differently: "." and ".." segments (also when spelt %2e), empty segments,
// backslashes, NUL and other control characters, invalid UTF-8, a first
// segment that looks like a Windows drive ("C:"), and keys longer than
// MaxKeyLen bytes. Every accepted key therefore stays below a directory it
// is joined onto with filepath.Join(dir, filepath.FromSlash(key)).
//
// A key may still name something other than a plain file on Windows ("a:b"
// is a stream of the file a, "nul.txt" a device, "a." is "a"). LocalPath
// (local.go) is for writing objects as files: it refuses those keys on
// every system, so one catalog writes the same files everywhere.
//
// It does not know about routes: the reserved "/-/" API prefix, catalogs and
// upstream layouts are the business of the HTTP layer. Nor does it normalise
// Unicode: two spellings of "é" are two keys.
package cleanpath
