// Package store keeps objects on disk: a content-addressed blob store (one
// file per sha256, shared by every path with the same bytes) and a bbolt
// index from object keys to blobs.
//
// Crash safety: a blob is written to a temp file, fsynced, renamed into place
// and its directory fsynced before the index points to it, so after a crash
// at any moment an object is either absent or complete and correct. Open
// reconciles the two: index records without a blob are dropped, blob files
// without a record and leftover temp files are removed.
//
// Quota: blob bytes plus the bytes reserved by writers in progress never
// exceed Config.MaxBytes. Room is made by evicting the least recently used
// blobs that nobody is reading or writing; when that is not enough the
// writer gets ErrFull instead of overshooting.
//
// The store knows nothing of HTTP or freshness: an Entry carries the headers
// its caller chose to keep, opaque to the store.
//
// Which file holds what:
//   - store.go: the Store type, Config, Entry and the sentinel errors.
//   - reconcile.go: Open (clearing temp files, reconciling index and disk,
//     rebuilding the LRU order), Run (access-time flushes) and Close.
//   - index.go: the bbolt index: buckets, encodings and every transaction
//     (Get, Update, Delete, List, PinBlobs, meta, commit, eviction).
//   - entrycache.go: decoded entries of recent keys kept in memory.
//   - reader.go: Reader and OpenBlob, with the cache of open descriptors.
//   - quota.go: the blobs in memory, reservations and LRU eviction.
//   - writer.go: Writer (Create, Write, Commit, Abort).
//   - resume.go: Resume, a writer whose partial file survives a restart,
//     and the pin that says which representation its bytes are.
package store
