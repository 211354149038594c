// Package glob selects catalog paths by patterns such as "security/**":
// what a mirror keeps (--mirror-include), what an agent syncs
// (--include), what a prefetch warms. One syntax for all three, so a
// pattern that works in one place works in the others.
//
// It matches slash-separated catalog paths only: it does not walk
// directories, clean paths or know about the file system.
package glob
