// What `relayd serve` does without, or cannot do, off Linux.
package main

import (
	"fmt"

	"github.com/relayd/relayd/pkg/node"
)

// platformNote says which relay features goos lacks (pkg/store's
// alloc_other.go, …), or refuses a mode that
// cannot work there. Relays are built for Linux; the agent side (fetch,
// agent sync|watch) works fully everywhere and is not concerned.
func platformNote(goos, mode string) (string, error) {
	switch goos {
	case "linux":
		return "", nil
	case "windows":
		if mode != node.ModeOrigin {
			// Go opens files without FILE_SHARE_DELETE, so every
			// commit of a fill (a rename of its open temporary file)
			// and every eviction of a blob being read would fail.
			return "", fmt.Errorf("serve --mode %s is not available on Windows: the cache renames and removes files while they are open, which Windows refuses; run relays on Linux (macOS works for development). On Windows, relayd fetch, relayd agent sync|watch and serve --mode origin work", mode)
		}
		return "on windows: no SIGHUP (restart to reload TLS material); relays are built for Linux", nil
	}
	return fmt.Sprintf("on %s: no disk preallocation (a full disk is found while writing), no sendfile for readers of a fill in progress; relays are built for Linux", goos), nil
}
