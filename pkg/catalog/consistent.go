package catalog

import (
	"path"
	"strings"

	"github.com/relayd/relayd/pkg/digest"
)

// ConsistentName is o's consistent target name (TUF consistent
// snapshots): dir/<sha256 hex>.name. It names one version of a path for
// good, so a relay serves it whatever generation is live, and a client
// installing an older generation than the newest asks for it by this
// name.
func ConsistentName(o Object) string {
	dir, base := path.Split(o.Path)
	return dir + o.Digest.Hex() + "." + base
}

// SplitConsistent parses a consistent target name into the path it is a
// version of and that version's sha256; ok is false for any other key
// (which may still be a path that merely looks hashed: the caller checks
// the catalog).
func SplitConsistent(key string) (p string, d digest.Digest, ok bool) {
	dir, base := path.Split(key)
	hexPart, name, found := strings.Cut(base, ".")
	if !found || len(hexPart) != 64 || name == "" {
		return "", digest.Digest{}, false
	}
	d, err := digest.ParseHex(hexPart)
	if err != nil {
		return "", digest.Digest{}, false
	}
	return dir + name, d, true
}
