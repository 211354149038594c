// A TUF repository for the tests, built with go-tuf's metadata API: one
// ed25519 key for every role, top-level targets listing the objects.
package agent

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/digest"
)

// testRepo signs the test metadata.
type testRepo struct {
	signer signature.Signer
	root   []byte // 1.root.json
	// expires is the timestamp's expiry in the next publish; zero: a day
	// from now.
	expires time.Time
}

func newRepo(t *testing.T) *testRepo {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signature.LoadSigner(priv, crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	key, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	root := metadata.Root(time.Now().AddDate(1, 0, 0))
	root.Signed.ConsistentSnapshot = true
	for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
		if err := root.Signed.AddKey(key, role); err != nil {
			t.Fatal(err)
		}
	}
	r := &testRepo{signer: signer}
	r.root = r.sign(t, root)
	return r
}

// sign signs m and returns its bytes.
func (r *testRepo) sign(t *testing.T, m interface {
	Sign(signature.Signer) (*metadata.Signature, error)
	ToBytes(bool) ([]byte, error)
}) []byte {
	t.Helper()
	if _, err := m.Sign(r.signer); err != nil {
		t.Fatal(err)
	}
	b, err := m.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// publish is the metadata of generation gen (snapshot, targets and
// timestamp version) listing files, by served name.
func (r *testRepo) publish(t *testing.T, gen uint64, files map[string][]byte) map[string][]byte {
	t.Helper()
	v := int64(gen)
	targets := metadata.Targets(time.Now().AddDate(0, 3, 0))
	targets.Signed.Version = v
	for p, b := range files {
		kind, plat, ver := catalog.Classify(p)
		tf, err := catalog.TargetFile(catalog.Object{Path: p, Size: int64(len(b)), Digest: digest.FromBytes(b), Kind: kind, Platform: plat, Version: ver})
		if err != nil {
			t.Fatal(err)
		}
		targets.Signed.Targets[p] = tf
	}
	snapshot := metadata.Snapshot(time.Now().AddDate(0, 1, 0))
	snapshot.Signed.Version = v
	snapshot.Signed.Meta["targets.json"] = metadata.MetaFile(v)
	exp := r.expires
	if exp.IsZero() {
		exp = time.Now().Add(24 * time.Hour)
	}
	ts := metadata.Timestamp(exp)
	ts.Signed.Version = v
	ts.Signed.Meta["snapshot.json"] = metadata.MetaFile(v)
	return map[string][]byte{
		"1.root.json":                      r.root,
		fmt.Sprintf("%d.targets.json", v):  r.sign(t, targets),
		fmt.Sprintf("%d.snapshot.json", v): r.sign(t, snapshot),
		"timestamp.json":                   r.sign(t, ts),
	}
}
