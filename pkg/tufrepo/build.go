// Building a new generation: which role lists which target, which roles
// changed, their new versions and signatures, the snapshot and timestamp.
package tufrepo

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"golang.org/x/sync/errgroup"

	"github.com/relayd/relayd/pkg/catalog"
)

// DefaultMaxDirectTargets is the most targets a leaf role lists itself;
// above, it delegates to hashed bins.
const DefaultMaxDirectTargets = 256

// builder proposes the next generation from a state.
type builder struct {
	s         *state
	ring      *KeyRing
	now       time.Time
	exp       Expiries
	maxDirect int
	workers   int
	changed   []*role // new versions, in order: top-level targets, leaves, bins
	renewAll  bool    // re-sign every role (keys rotated, forced)
}

// role is one new targets-role version to write.
type role struct {
	name     string
	m        *targetsMeta
	e        entry
	data     []byte
	complete bool // data carries its threshold of signatures: its length is final
}

// BinBytes is the size of a hashed bin's targets a leaf role aims at: it
// gets no more bins than it needs to keep each under it.
const BinBytes = 32 << 10

// bitsFor is the bin count exponent for n targets whose entries take
// about size bytes: at most about sqrt(6.7·n) bins (snapshot entries of
// ~32 bytes against bin entries of ~214 bytes balance there, which keeps
// snapshot + one bin smallest), and no more than keep each bin under
// BinBytes (fewer files to sign and write: 64 bins, not 256, for 10,000
// targets), rounded to a power of two. Either way a client fetches at
// most what the balance costs.
func bitsFor(n int, size int64) int {
	if n < 1 {
		return 1
	}
	b := int(math.Round(math.Log2(math.Sqrt(6.7 * float64(n)))))
	if size > 0 {
		b = min(b, int(math.Ceil(math.Log2(float64(size)/BinBytes))))
	}
	return min(max(b, 1), 20)
}

// entryBytes estimates the bytes targets take in a targets role: the
// path, the custom data and about 124 bytes of hash, length and JSON.
func entryBytes(ts map[string]*metadata.TargetFiles) int64 {
	var n int64
	for p, tf := range ts {
		n += int64(len(p)) + 124
		if tf.Custom != nil {
			n += int64(len(*tf.Custom))
		}
	}
	return n
}

// allPaths are the patterns of every path up to MaxDepth segments under
// dir ("" for every path): TUF matches one segment per '*'.
func allPaths(dir string) []string {
	var out []string
	p, depth := dir, 0
	if dir != "" {
		depth = strings.Count(dir, "/") + 1
	}
	for ; depth < MaxDepth; depth++ {
		if p == "" {
			p = "*"
		} else {
			p += "/*"
		}
		out = append(out, p)
	}
	return out
}

// ExpandPaths turns operator patterns into TUF path patterns: "dir/**"
// becomes dir/*, dir/*/*, … up to MaxDepth segments, "**" every path;
// any other pattern is kept (one segment per '*', as TUF matches).
func ExpandPaths(patterns []string) ([]string, error) {
	var out []string
	for _, p := range patterns {
		if p == "" || strings.HasPrefix(p, "/") || strings.Count(p, "/") >= MaxDepth {
			return nil, fmt.Errorf("tufrepo: path pattern %q: want a relative pattern of at most %d segments", p, MaxDepth)
		}
		if p == "**" {
			out = append(out, allPaths("")...)
			continue
		}
		if pre, ok := strings.CutSuffix(p, "/**"); ok && !strings.Contains(pre, "**") {
			out = append(out, allPaths(pre)...)
			continue
		}
		if strings.Contains(p, "**") {
			return nil, fmt.Errorf("tufrepo: path pattern %q: ** only as the last segment", p)
		}
		out = append(out, p)
	}
	for _, p := range out {
		if _, err := path.Match(p, "x"); err != nil {
			return nil, fmt.Errorf("tufrepo: path pattern %q: %w", p, err)
		}
	}
	return out, nil
}

// leafRoles are the leaf roles of s in order, rest last and signed by the
// newest root's targets keys; delegation keys are in keys.
func (s *state) leafRoles() (leaves []metadata.DelegatedRole, keys map[string]*metadata.Key) {
	keys = map[string]*metadata.Key{}
	if t := s.roles[metadata.TARGETS]; t != nil && t.Signed.Delegations != nil {
		for _, d := range t.Signed.Delegations.Roles {
			if d.Name == Rest {
				continue
			}
			leaves = append(leaves, d)
			for _, id := range d.KeyIDs {
				keys[id] = t.Signed.Delegations.Keys[id]
			}
		}
	}
	tr := s.root.Signed.Roles[metadata.TARGETS]
	rest := metadata.DelegatedRole{Name: Rest, KeyIDs: slices.Clone(tr.KeyIDs), Threshold: tr.Threshold,
		Terminating: true, Paths: allPaths("")}
	for _, id := range tr.KeyIDs {
		keys[id] = s.root.Signed.Keys[id]
	}
	return append(leaves, rest), keys
}

// assign puts each target into the first leaf role whose paths match it.
func assign(leaves []metadata.DelegatedRole, targets map[string]*metadata.TargetFiles) (map[string]map[string]*metadata.TargetFiles, error) {
	out := make(map[string]map[string]*metadata.TargetFiles, len(leaves))
	for _, l := range leaves {
		out[l.Name] = map[string]*metadata.TargetFiles{}
	}
	for p, tf := range targets {
		if strings.Count(p, "/") >= MaxDepth {
			return nil, fmt.Errorf("tufrepo: %s is deeper than %d levels; relayd does not publish it", p, MaxDepth)
		}
		// rest (last) takes every path of at most MaxDepth segments.
		i := slices.IndexFunc(leaves[:len(leaves)-1], func(l metadata.DelegatedRole) bool {
			ok, _ := l.IsDelegatedPath(p)
			return ok
		})
		if i < 0 && leaves[len(leaves)-1].Name == Rest {
			i = len(leaves) - 1
		}
		if i < 0 {
			return nil, fmt.Errorf("tufrepo: no role takes %s", p)
		}
		out[leaves[i].Name][p] = tf
	}
	return out, nil
}

// targetFiles are the TUF targets of objects.
func targetFiles(objects []catalog.Object) (map[string]*metadata.TargetFiles, error) {
	out := make(map[string]*metadata.TargetFiles, len(objects))
	for _, o := range objects {
		tf, err := catalog.TargetFile(o)
		if err != nil {
			return nil, err
		}
		out[o.Path] = tf
	}
	return out, nil
}

// currentTargets are every target the state lists, by path.
func (s *state) currentTargets() map[string]*metadata.TargetFiles {
	out := map[string]*metadata.TargetFiles{}
	for name, m := range s.roles {
		if name == metadata.TARGETS {
			continue
		}
		maps.Copy(out, m.Signed.Targets)
	}
	return out
}

// build proposes the roles of a generation listing targets with the
// leaf roles leaves (their keys in keys).
func (b *builder) build(leaves []metadata.DelegatedRole, keys map[string]*metadata.Key, targets map[string]*metadata.TargetFiles) error {
	byLeaf, err := assign(leaves, targets)
	if err != nil {
		return err
	}
	top := &metadata.Delegations{Keys: keys, Roles: leaves}
	b.propose(metadata.TARGETS, map[string]*metadata.TargetFiles{}, top, rootEntry(b.s.root, metadata.TARGETS))
	for _, l := range leaves {
		b.buildLeaf(l, keys, byLeaf[l.Name])
	}
	return b.sign()
}

// buildLeaf proposes leaf role l listing ts itself, or through hashed
// bins once it has more than maxDirect targets (and for ever after: the
// bit length never shrinks).
func (b *builder) buildLeaf(l metadata.DelegatedRole, keys map[string]*metadata.Key, ts map[string]*metadata.TargetFiles) {
	e := entry{delegator: metadata.TARGETS, keyIDs: l.KeyIDs, threshold: l.Threshold}
	bits := 0
	if prev := b.s.roles[l.Name]; prev != nil && prev.Signed.Delegations != nil && prev.Signed.Delegations.SuccinctRoles != nil {
		bits = prev.Signed.Delegations.SuccinctRoles.BitLength
	}
	if bits == 0 && len(ts) <= b.maxDirect {
		b.propose(l.Name, ts, nil, e)
		return
	}
	bits = max(bits, bitsFor(len(ts), entryBytes(ts)))
	lkeys := map[string]*metadata.Key{}
	for _, id := range l.KeyIDs {
		lkeys[id] = keys[id]
	}
	sr := &metadata.SuccinctRoles{KeyIDs: l.KeyIDs, Threshold: l.Threshold, BitLength: bits, NamePrefix: l.Name + binSuffix}
	b.propose(l.Name, map[string]*metadata.TargetFiles{}, &metadata.Delegations{Keys: lkeys, SuccinctRoles: sr}, e)
	bins := map[string]map[string]*metadata.TargetFiles{}
	for _, name := range sr.GetRoles() {
		bins[name] = map[string]*metadata.TargetFiles{}
	}
	for p, tf := range ts {
		bins[sr.GetRolesForTarget(p)[0].Name][p] = tf
	}
	be := entry{delegator: l.Name, keyIDs: l.KeyIDs, threshold: l.Threshold}
	for _, name := range sr.GetRoles() {
		b.propose(name, bins[name], nil, be)
	}
}

// propose records a new version of role name unless the installed one
// lists the same targets and delegations, is signed under the same keys
// and is not near its expiry.
func (b *builder) propose(name string, targets map[string]*metadata.TargetFiles, deleg *metadata.Delegations, e entry) {
	prev := b.s.roles[name]
	if prev != nil && !b.renewAll && !b.s.stale[name] && sameEntry(b.s.entries[name], e) &&
		equalTargets(prev.Signed.Targets, targets) && equalJSON(prev.Signed.Delegations, deleg) &&
		!b.renew(prev.Signed.Expires, b.exp.Targets, e) {
		return
	}
	m := metadata.Targets(b.now.Add(b.exp.Targets))
	m.Signed.Version = b.nextVersion(name)
	m.Signed.Targets = targets
	m.Signed.Delegations = deleg
	b.changed = append(b.changed, &role{name: name, m: m, e: e})
}

// nextVersion is one above the highest version of name the repository
// ever named (a role that comes back continues its count).
func (b *builder) nextVersion(name string) int64 {
	v := int64(0)
	if b.s.snapshot != nil {
		if mf := b.s.snapshot.Signed.Meta[name+".json"]; mf != nil {
			v = mf.Version
		}
	}
	if prev := b.s.roles[name]; prev != nil {
		v = max(v, prev.Signed.Version)
	}
	return v + 1
}

// renew says whether metadata expiring at exp, of lifetime life, is past
// half its life and the ring holds enough of its keys to re-sign it.
func (b *builder) renew(exp time.Time, life time.Duration, e entry) bool {
	if exp.Sub(b.now) >= life/2 {
		return false
	}
	n := 0
	for _, id := range e.keyIDs {
		if b.ring.Has(id) {
			n++
		}
	}
	return n >= e.threshold
}

// sign signs and encodes the changed roles, workers at a time.
func (b *builder) sign() error {
	var g errgroup.Group
	g.SetLimit(b.workers)
	for _, r := range b.changed {
		g.Go(func() error {
			data, n, err := signWith(b.ring, r.m, r.e.keyIDs)
			if err != nil {
				return fmt.Errorf("tufrepo: %s: %w", r.name, err)
			}
			r.data, r.complete = data, n >= r.e.threshold
			return nil
		})
	}
	return g.Wait()
}

// finish adds the snapshot and timestamp to the changed roles and
// returns the change, or nil when nothing needs writing.
func (b *builder) finish() (*change, error) {
	s := b.s
	c := &change{kind: kindGeneration, baseRoot: s.root.Signed.Version, baseSnapshot: s.generation()}
	if len(b.changed) == 0 && s.snapshot != nil && !s.stale[metadata.SNAPSHOT] &&
		!b.renew(s.snapshot.Signed.Expires, b.exp.Snapshot, rootEntry(s.root, metadata.SNAPSHOT)) {
		if !s.stale[metadata.TIMESTAMP] {
			return nil, nil
		}
		// Only the timestamp keys rotated: a new timestamp, the same
		// snapshot.
		snapRaw, err := readBounded(filepath.Join(s.dir, fileName(s.generation(), metadata.SNAPSHOT)))
		if err != nil {
			return nil, err
		}
		return c, b.addTimestamp(c, s.generation(), snapRaw)
	}
	snap := metadata.Snapshot(b.now.Add(b.exp.Snapshot))
	snap.Signed.Meta = map[string]*metadata.MetaFiles{}
	if s.snapshot != nil {
		// Every role the repository ever named stays named: a client
		// refuses a snapshot that drops one.
		for k, v := range s.snapshot.Signed.Meta {
			snap.Signed.Meta[k] = &metadata.MetaFiles{Version: v.Version, Length: v.Length}
		}
	}
	for _, r := range b.changed {
		mf := &metadata.MetaFiles{Version: r.m.Signed.Version}
		if r.complete && lengthInSnapshot(r) {
			mf.Length = int64(len(r.data))
		}
		snap.Signed.Meta[r.name+".json"] = mf
		c.add(fileName(r.m.Signed.Version, r.name), r.name, r.data, r.m.Signatures, r.e)
	}
	snap.Signed.Version = s.generation() + 1
	se := rootEntry(s.root, metadata.SNAPSHOT)
	snapData, n, err := signWith(b.ring, snap, se.keyIDs)
	if err != nil {
		return nil, fmt.Errorf("tufrepo: %s: %w", metadata.SNAPSHOT, err)
	}
	c.add(fileName(snap.Signed.Version, metadata.SNAPSHOT), metadata.SNAPSHOT, snapData, snap.Signatures, se)
	if n < se.threshold {
		snapData = nil // staged: its signatures, so its length, are not final
	}
	if err := b.addTimestamp(c, snap.Signed.Version, snapData); err != nil {
		return nil, err
	}
	return c, nil
}

// lengthInSnapshot says whether the snapshot gives r's length: the
// top-level targets and the leaf roles (few), not their hashed bins (many:
// their lengths would grow the snapshot every client fetches).
func lengthInSnapshot(r *role) bool {
	return r.e.delegator == metadata.ROOT || r.e.delegator == metadata.TARGETS
}

// snapshotMetaFile is what a timestamp says of snapshot version sv: its
// length and sha256 when raw (the signed file) is known.
func snapshotMetaFile(sv int64, raw []byte) *metadata.MetaFiles {
	mf := &metadata.MetaFiles{Version: sv}
	if raw != nil {
		h := sha256.Sum256(raw)
		mf.Length, mf.Hashes = int64(len(raw)), metadata.Hashes{"sha256": h[:]}
	}
	return mf
}

// addTimestamp adds the next timestamp, naming snapshot version sv whose
// signed file is snapRaw (nil while the snapshot is staged).
func (b *builder) addTimestamp(c *change, sv int64, snapRaw []byte) error {
	ts := metadata.Timestamp(b.now.Add(b.exp.Timestamp))
	ts.Signed.Meta["snapshot.json"] = snapshotMetaFile(sv, snapRaw)
	if b.s.timestamp != nil {
		ts.Signed.Version = b.s.timestamp.Signed.Version + 1
		c.baseTimestamp = b.s.timestamp.Signed.Version
	}
	return c.addSigned(b.ring, ts, TimestampFile, metadata.TIMESTAMP, rootEntry(b.s.root, metadata.TIMESTAMP))
}

func sameEntry(a, b entry) bool {
	if a.threshold != b.threshold || len(a.keyIDs) != len(b.keyIDs) {
		return false
	}
	x, y := slices.Clone(a.keyIDs), slices.Clone(b.keyIDs)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// equalTargets compares two target lists by path, length, sha256 and
// custom data.
func equalTargets(a, b map[string]*metadata.TargetFiles) bool {
	if len(a) != len(b) {
		return false
	}
	for p, x := range a {
		y, ok := b[p]
		if !ok || x.Length != y.Length || !bytes.Equal(x.Hashes["sha256"], y.Hashes["sha256"]) || len(x.Hashes) != len(y.Hashes) {
			return false
		}
		if (x.Custom == nil) != (y.Custom == nil) || x.Custom != nil && !bytes.Equal(*x.Custom, *y.Custom) {
			return false
		}
	}
	return true
}

// equalJSON compares two values by their JSON encoding (small ones:
// delegations).
func equalJSON(a, b *metadata.Delegations) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

func defaultWorkers(n int) int {
	if n <= 0 {
		return runtime.NumCPU()
	}
	return n
}

type targetsMetaFiles = metadata.TargetFiles

// leafLayout is the leaf roles in order and their keys.
type leafLayout struct {
	roles []metadata.DelegatedRole
	keys  map[string]*metadata.Key
}
