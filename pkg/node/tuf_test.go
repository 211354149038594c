package node

import (
	"path/filepath"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/pkg/tufrepo"
)

// testRoot makes a TUF repository with a key per top-level role and
// returns the path of its 1.root.json.
func testRoot(tb testing.TB) string {
	tb.Helper()
	tree, keys := tb.TempDir(), filepath.Join(tb.TempDir(), "keys")
	roles := map[string]tufrepo.RoleKeys{}
	for _, r := range tufrepo.TopRoles {
		_, pub, _, err := tufrepo.GenerateKey(keys, r)
		if err != nil {
			tb.Fatal(err)
		}
		k, err := tufrepo.LoadPublicKey(pub)
		if err != nil {
			tb.Fatal(err)
		}
		roles[r] = tufrepo.RoleKeys{Keys: []*metadata.Key{k}, Threshold: 1}
	}
	ring, err := tufrepo.LoadKeyRing(nil, []string{keys})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := tufrepo.Init(tree, ring, roles, tufrepo.Options{Workers: 1}); err != nil {
		tb.Fatal(err)
	}
	return filepath.Join(tree, "-", "tuf", "1.root.json")
}
