package catalog

import (
	"testing"

	"github.com/relayd/relayd/pkg/digest"
)

func TestConsistentName(t *testing.T) {
	t.Parallel()
	d := digest.FromBytes([]byte("x"))
	for _, p := range []string{"a.deb", "pool/main/a.deb", "dir/name.with.dots"} {
		name := ConsistentName(Object{Path: p, Digest: d})
		got, gd, ok := SplitConsistent(name)
		if !ok || got != p || gd != d {
			t.Errorf("%s → %s → %q %v %v", p, name, got, gd, ok)
		}
	}
	for _, k := range []string{"a.deb", "pool/" + d.Hex(), "pool/" + d.Hex() + ".", "pool/" + d.Hex()[:63] + ".a", "pool/" + "Z" + d.Hex()[1:] + ".a"} {
		if p, _, ok := SplitConsistent(k); ok {
			t.Errorf("SplitConsistent(%q) = %q, want not a consistent name", k, p)
		}
	}
}
