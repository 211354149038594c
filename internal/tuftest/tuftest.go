// Package tuftest makes the keys of a TUF repository for tests: one key
// per top-level role (and, with Rollout, the rollout role), each role's
// threshold 1, the single-machine set-up that `relayd tuf init TREE --keys
// DIR` makes.
package tuftest

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/pkg/tufrepo"
	"github.com/relayd/relayd/pkg/wire"
)

// Keys writes a key pair per top-level role into dir and returns the
// roles for tufrepo.Init and the ring of the private keys.
func Keys(t testing.TB, dir string) (map[string]tufrepo.RoleKeys, *tufrepo.KeyRing) {
	t.Helper()
	roles := map[string]tufrepo.RoleKeys{}
	for _, r := range tufrepo.TopRoles {
		_, pub, _, err := tufrepo.GenerateKey(dir, r)
		if err != nil {
			t.Fatal(err)
		}
		k, err := tufrepo.LoadPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		roles[r] = tufrepo.RoleKeys{Keys: []*metadata.Key{k}, Threshold: 1}
	}
	ring, err := tufrepo.LoadKeyRing(nil, []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	return roles, ring
}

// Rollout writes a rollout key pair (dir/rollout.key, .pub) and adds it
// to roles (the rollout role, threshold 1) and to ring: the set-up of
// `relayd tuf init TREE --keys DIR --rollout-key DIR/rollout.pub`.
func Rollout(t testing.TB, dir string, roles map[string]tufrepo.RoleKeys, ring *tufrepo.KeyRing) {
	t.Helper()
	priv, pub, _, err := tufrepo.GenerateKey(dir, wire.RolloutRole)
	if err != nil {
		t.Fatal(err)
	}
	k, err := tufrepo.LoadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	roles[wire.RolloutRole] = tufrepo.RoleKeys{Keys: []*metadata.Key{k}, Threshold: 1}
	if _, err := ring.AddFile(priv); err != nil {
		t.Fatal(err)
	}
}

// Root is a valid self-signed TUF root, one new key for every top-level
// role, expiring in a year: for tests that need a trusted root and no
// repository behind it.
func Root(t testing.TB) []byte {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	root := metadata.Root(time.Now().AddDate(1, 0, 0))
	for _, role := range tufrepo.TopRoles {
		if err := root.Signed.AddKey(key, role); err != nil {
			t.Fatal(err)
		}
	}
	signer, err := signature.LoadSigner(priv, crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Sign(signer); err != nil {
		t.Fatal(err)
	}
	b, err := root.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
