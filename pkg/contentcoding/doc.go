// Package contentcoding makes and reads the encoded forms of blobs that
// relayd nodes send each other: zstd (RFC 8878) and dcz deltas (RFC 9842,
// Compression Dictionary Transport: zstd with an earlier version of the
// object, a blob the requester holds, as raw dictionary).
//
// Blobs stay stored and verified as their identity bytes; an encoded form is
// derived data. Cache keeps those forms in a directory of its own beside the
// blob store (never in the store's index), under its own byte budget with
// least-recently-used eviction; a form is written to a temp file, fsynced and
// renamed, so a crash never leaves a partial one that could be served. Each
// form is produced once: concurrent requests for it share one build, and at
// most Config.Builds builds run at a time (a request that finds them all
// busy is answered with what exists, identity at worst, never queued).
//
// What is not worth sending encoded is not sent encoded: content whose first
// 64 KiB do not compress below 0.9 of their size (archives, media) is sent
// as it is without compressing the rest; a delta that is not below 0.8 of
// the object falls back to zstd or identity. Those decisions are kept in
// memory so they are made once.
//
// Limits (Config, with these defaults), which bound memory and CPU:
//   - MaxDictionary (128 MiB): the largest old version used as a dictionary.
//     Encoder and decoder hold the whole dictionary in memory.
//   - MaxDeltaObject (128 MiB): the largest new version a delta is built
//     for. A zstd window must reach from the end of the object back to the
//     start of the dictionary, so the window is dictionary + object rounded
//     up to a power of two: at most 256 MiB with the defaults (zstd allows
//     512 MiB), which the encoder allocates. Larger objects travel as zstd.
//   - MaxWindow (256 MiB): the largest window Decode accepts; a frame that
//     asks for more is refused before anything is allocated for it.
//
// Decode is the receiving side: it checks the dcz header against the
// dictionary it was given, decodes within the window bound, and yields
// exactly the expected length (the signed target's): more is an error, and
// so is less. The caller still verifies the sha256 of what it reads before
// it commits anything; a corrupt delta therefore fails decoding or
// verification and never becomes a wrong object.
//
// The package knows nothing of HTTP beyond the two header values it parses
// (Accept-Encoding, Available-Dictionary); the content handler decides when
// to ask it.
package contentcoding
