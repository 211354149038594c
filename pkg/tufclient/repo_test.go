// A TUF repository built in the test with go-tuf's metadata API, served
// from a map, and a Fetcher that counts what it is asked for.
package tufclient

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/digest"
)

type testKey struct {
	id     string
	pub    *metadata.Key
	signer signature.Signer
}

func newKey(tb fataler) *testKey {
	tb.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	id, err := k.ID()
	if err != nil {
		tb.Fatal(err)
	}
	s, err := signature.LoadSigner(priv, crypto.Hash(0))
	if err != nil {
		tb.Fatal(err)
	}
	return &testKey{id: id, pub: k, signer: s}
}

// repo is an origin's repository: it publishes into files.
type repo struct {
	tb       fataler
	now      time.Time
	root     *metadata.Metadata[metadata.RootType]
	keys     map[string][]*testKey // signers by role
	dkey     *testKey              // signs every delegated role
	roles    map[string]*metadata.Metadata[metadata.TargetsType]
	dirty    map[string]bool
	snap     *metadata.Metadata[metadata.SnapshotType]
	ts       *metadata.Metadata[metadata.TimestampType]
	files    map[string][]byte
	snapHash bool // list length and hashes in snapshot and timestamp
}

func newRepo(tb fataler, now time.Time) *repo {
	r := &repo{tb: tb, now: now, keys: map[string][]*testKey{}, dkey: newKey(tb),
		roles: map[string]*metadata.Metadata[metadata.TargetsType]{}, dirty: map[string]bool{},
		files: map[string][]byte{}, snapHash: true}
	r.root = metadata.Root(now.Add(365 * 24 * time.Hour))
	for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		r.setKeys(role, newKey(tb))
	}
	r.signRoot(nil)
	r.roles[metadata.TARGETS] = metadata.Targets(now.Add(90 * 24 * time.Hour))
	r.dirty[metadata.TARGETS] = true
	return r
}

// setKeys makes keys the keys of top-level role (threshold 1).
func (r *repo) setKeys(role string, keys ...*testKey) {
	r.keys[role] = keys
	r.root.Signed.Roles[role].KeyIDs = nil
	for _, k := range keys {
		r.root.Signed.Keys[k.id] = k.pub
		r.root.Signed.Roles[role].KeyIDs = append(r.root.Signed.Roles[role].KeyIDs, k.id)
	}
}

// signRoot signs the root with its keys and extra (the previous root's),
// and serves it as N.root.json.
func (r *repo) signRoot(extra []*testKey) {
	r.root.ClearSignatures()
	seen := map[string]bool{}
	for _, k := range append(append([]*testKey{}, r.keys[metadata.ROOT]...), extra...) {
		if !seen[k.id] {
			seen[k.id] = true
			r.sign(r.root, k)
		}
	}
	r.files[rootFile(r.root.Signed.Version)] = r.bytes(r.root)
}

// rotate publishes root version+1 with new keys for role, signed by the
// old root keys too.
func (r *repo) rotate(role string, keys ...*testKey) {
	old := r.keys[metadata.ROOT]
	r.root.Signed.Version++
	r.setKeys(role, keys...)
	r.signRoot(old)
}

func (r *repo) sign(md any, k *testKey) {
	var err error
	switch m := md.(type) {
	case *metadata.Metadata[metadata.RootType]:
		_, err = m.Sign(k.signer)
	case *metadata.Metadata[metadata.TargetsType]:
		_, err = m.Sign(k.signer)
	case *metadata.Metadata[metadata.SnapshotType]:
		_, err = m.Sign(k.signer)
	case *metadata.Metadata[metadata.TimestampType]:
		_, err = m.Sign(k.signer)
	}
	if err != nil {
		r.tb.Fatal(err)
	}
}

func (r *repo) bytes(md interface{ ToBytes(bool) ([]byte, error) }) []byte {
	b, err := md.ToBytes(false)
	if err != nil {
		r.tb.Fatal(err)
	}
	return b
}

// delegate adds a path delegation from parent to a new role name.
func (r *repo) delegate(parent, name string, terminating bool, paths ...string) {
	p := r.roles[parent]
	if p.Signed.Delegations == nil {
		p.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}, Roles: []metadata.DelegatedRole{}}
	}
	p.Signed.Delegations.Keys[r.dkey.id] = r.dkey.pub
	p.Signed.Delegations.Roles = append(p.Signed.Delegations.Roles, metadata.DelegatedRole{
		Name: name, KeyIDs: []string{r.dkey.id}, Threshold: 1, Terminating: terminating, Paths: paths})
	r.roles[name] = metadata.Targets(r.now.Add(90 * 24 * time.Hour))
	r.dirty[parent], r.dirty[name] = true, true
}

// bins makes parent delegate everything to 2^bits hashed bins.
func (r *repo) bins(parent, prefix string, bits int) {
	p := r.roles[parent]
	s := &metadata.SuccinctRoles{KeyIDs: []string{r.dkey.id}, Threshold: 1, BitLength: bits, NamePrefix: prefix}
	p.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{r.dkey.id: r.dkey.pub}, SuccinctRoles: s}
	for _, name := range s.GetRoles() {
		r.roles[name] = metadata.Targets(r.now.Add(90 * 24 * time.Hour))
		r.dirty[name] = true
	}
	r.dirty[parent] = true
}

// binOf is the bin of parent's succinct roles for path.
func (r *repo) binOf(parent, path string) string {
	return r.roles[parent].Signed.Delegations.SuccinctRoles.GetRolesForTarget(path)[0].Name
}

// add lists path (content body) in role; it returns the object.
func (r *repo) add(role, path, body string) catalog.Object {
	kind, platform, version := catalog.Classify(path)
	o := catalog.Object{Path: path, Size: int64(len(body)), Digest: digest.FromBytes([]byte(body)), Kind: kind, Platform: platform, Version: version}
	tf, err := catalog.TargetFile(o)
	if err != nil {
		r.tb.Fatal(err)
	}
	r.roles[role].Signed.Targets[path] = tf
	r.dirty[role] = true
	return o
}

// publish signs every changed role, a new snapshot and a new timestamp.
func (r *repo) publish() {
	if r.snap == nil {
		r.snap = metadata.Snapshot(r.now.Add(30 * 24 * time.Hour))
		r.snap.Signed.Meta = map[string]*metadata.MetaFiles{}
	} else {
		r.snap.Signed.Version++
	}
	for name := range r.dirty {
		md := r.roles[name]
		if r.snap.Signed.Meta[name+".json"] != nil {
			md.Signed.Version++
		}
		raw := r.signTargets(name, md)
		r.snap.Signed.Meta[name+".json"] = r.metaFile(md.Signed.Version, raw)
	}
	clear(r.dirty)
	r.snap.ClearSignatures()
	for _, k := range r.keys[metadata.SNAPSHOT] {
		r.sign(r.snap, k)
	}
	raw := r.bytes(r.snap)
	r.files[versioned(r.snap.Signed.Version, metadata.SNAPSHOT)] = raw
	r.signTimestamp(r.metaFile(r.snap.Signed.Version, raw))
}

func (r *repo) signTargets(name string, md *metadata.Metadata[metadata.TargetsType]) []byte {
	md.ClearSignatures()
	signers := r.keys[metadata.TARGETS]
	if name != metadata.TARGETS {
		signers = []*testKey{r.dkey}
	}
	for _, k := range signers {
		r.sign(md, k)
	}
	raw := r.bytes(md)
	r.files[versioned(md.Signed.Version, name)] = raw
	return raw
}

func (r *repo) metaFile(version int64, raw []byte) *metadata.MetaFiles {
	m := &metadata.MetaFiles{Version: version}
	if r.snapHash {
		sum := sha256.Sum256(raw)
		m.Length, m.Hashes = int64(len(raw)), metadata.Hashes{"sha256": sum[:]}
	}
	return m
}

// signTimestamp publishes timestamp version+1 naming snapshot.
func (r *repo) signTimestamp(snapshot *metadata.MetaFiles) {
	if r.ts == nil {
		r.ts = metadata.Timestamp(r.now.Add(24 * time.Hour))
	} else {
		r.ts.Signed.Version++
	}
	r.ts.Signed.Meta = map[string]*metadata.MetaFiles{"snapshot.json": snapshot}
	r.ts.ClearSignatures()
	for _, k := range r.keys[metadata.TIMESTAMP] {
		r.sign(r.ts, k)
	}
	r.files["timestamp.json"] = r.bytes(r.ts)
}

// resign re-signs the timestamp for the same snapshot, expiring a day
// after at.
func (r *repo) resign(at time.Time) {
	r.ts.Signed.Expires = at.Add(24 * time.Hour)
	r.signTimestamp(r.ts.Signed.Meta["snapshot.json"])
}

// server serves a copy of the repository's files at some moment.
type server struct {
	mu    sync.Mutex
	files map[string][]byte
	reqs  []string
}

func (r *repo) serve() *server { return &server{files: r.snapshotFiles()} }

func (r *repo) snapshotFiles() map[string][]byte {
	m := make(map[string][]byte, len(r.files))
	for k, v := range r.files {
		m[k] = v
	}
	return m
}

// sync makes s serve what r has now.
func (s *server) sync(r *repo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files = r.snapshotFiles()
}

func (s *server) set(name string, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[name] = b
}

func (s *server) FetchMeta(_ context.Context, name string, max int64) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, name)
	b, ok := s.files[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: more than %d bytes", name, max)
	}
	return append([]byte(nil), b...), nil
}

// requests returns and forgets the names asked for.
func (s *server) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.reqs
	s.reqs = nil
	return r
}

var _ Fetcher = (*server)(nil)

// fataler is what the repository needs of a test: *testing.T or *rapid.T.
type fataler interface {
	Helper()
	Fatal(args ...any)
}
