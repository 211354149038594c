package tufclient

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
	"pgregory.net/rapid"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/digest"
)

// pathPool is every path of one to three segments of a, b and c: small,
// so that roles list the same paths and patterns overlap.
var pathPool = func() []string {
	var out []string
	var walk func(prefix string, depth int)
	walk = func(prefix string, depth int) {
		for _, s := range []string{"a", "b", "c"} {
			p := prefix + s
			out = append(out, p)
			if depth < 3 {
				walk(p+"/", depth+1)
			}
		}
	}
	walk("", 1)
	return out
}()

// genTree adds to r, under parent, a random subtree of delegations with
// random targets, and returns how many roles it made.
func genTree(rt *rapid.T, r *repo, parent string, depth int, n *int) {
	for range rapid.IntRange(0, 6).Draw(rt, "targets") {
		p := rapid.SampledFrom(pathPool).Draw(rt, "path")
		r.add(parent, p, fmt.Sprintf("%s by %s", p, parent))
	}
	if depth >= 3 {
		return
	}
	if depth > 0 && rapid.IntRange(0, 5).Draw(rt, "bins?") == 0 {
		prefix := parent + "-bin"
		r.bins(parent, prefix, rapid.IntRange(1, 2).Draw(rt, "bits"))
		for _, bin := range r.roles[parent].Signed.Delegations.SuccinctRoles.GetRoles() {
			for range rapid.IntRange(0, 3).Draw(rt, "bin targets") {
				p := rapid.SampledFrom(pathPool).Draw(rt, "path")
				r.add(bin, p, fmt.Sprintf("%s by %s", p, bin))
			}
		}
		return
	}
	// Two or more at the top and one or more below, so that a terminating
	// delegation below the top often has roles after it to cut off.
	minKids := max(0, 2-depth)
	for range rapid.IntRange(minKids, 3).Draw(rt, "delegations") {
		*n++
		name := fmt.Sprintf("r%d", *n)
		term := rapid.Bool().Draw(rt, "terminating")
		if rapid.IntRange(0, 3).Draw(rt, "hashed?") == 0 {
			var prefixes []string
			for range rapid.IntRange(1, 3).Draw(rt, "prefixes") {
				sum := sha256.Sum256([]byte(rapid.SampledFrom(pathPool).Draw(rt, "prefix of")))
				prefixes = append(prefixes, base64.URLEncoding.EncodeToString(sum[:])[:rapid.IntRange(1, 2).Draw(rt, "len")])
			}
			r.delegateHashed(parent, name, term, prefixes...)
		} else {
			var paths []string
			for range rapid.IntRange(1, 3).Draw(rt, "patterns") {
				segs := make([]string, rapid.IntRange(1, 3).Draw(rt, "segments"))
				for i := range segs {
					segs[i] = rapid.SampledFrom([]string{"a", "b", "c", "*", "[ab]", "?"}).Draw(rt, "segment")
				}
				paths = append(paths, strings.Join(segs, "/"))
			}
			r.delegate(parent, name, term, paths...)
		}
		genTree(rt, r, name, depth+1, n)
	}
}

// delegateHashed adds a delegation by path hash prefixes.
func (r *repo) delegateHashed(parent, name string, terminating bool, prefixes ...string) {
	r.delegate(parent, name, terminating, "placeholder")
	d := r.roles[parent].Signed.Delegations
	d.Roles[len(d.Roles)-1].Paths, d.Roles[len(d.Roles)-1].PathHashPrefixes = nil, prefixes
}

// mapDownloader serves a repository to go-tuf's updater (the oracle).
type mapDownloader struct{ files map[string][]byte }

func (m mapDownloader) DownloadFile(url string, max int64, _ time.Duration) ([]byte, error) {
	name := strings.TrimPrefix(url, "http://repo.invalid/meta/")
	b, ok := m.files[name]
	if !ok {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: 404, URL: url}
	}
	if int64(len(b)) > max {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: name}
	}
	return b, nil
}

// TestEnumerationMatchesGoTUF checks, for random delegation trees (paths,
// globs, hash prefixes, hashed bins, terminating or not), that the
// catalog holds exactly the targets go-tuf's updater finds, each with the
// entry the updater returns.
func TestEnumerationMatchesGoTUF(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		r := newRepo(rt, t0)
		n := 0
		genTree(rt, r, "targets", 0, &n)
		r.publish()
		srv := r.serve()
		c, err := New(r.files["1.root.json"], Options{Now: func() time.Time { return t0 }})
		if err != nil {
			rt.Fatal(err)
		}
		st, err := c.Update(context.Background(), srv)
		if err != nil {
			rt.Fatal(err)
		}
		cfg, err := config.New("http://repo.invalid/meta/", r.files["1.root.json"])
		if err != nil {
			rt.Fatal(err)
		}
		cfg.Fetcher, cfg.DisableLocalCache = mapDownloader{files: srv.files}, true
		up, err := updater.New(cfg)
		if err != nil {
			rt.Fatal(err)
		}
		up.UnsafeSetRefTime(t0)
		for _, p := range pathPool {
			tf, err := up.GetTargetInfo(p)
			if err != nil && !strings.Contains(err.Error(), "not found") {
				rt.Fatalf("oracle: %s: %v", p, err)
			}
			got, ok := st.Catalog.Lookup(p)
			switch {
			case err != nil && ok:
				rt.Fatalf("%s: in the catalog (%d bytes), go-tuf finds no role for it", p, got.Size)
			case err == nil && !ok:
				rt.Fatalf("%s: go-tuf finds it (%d bytes), the catalog does not have it", p, tf.Length)
			case err == nil && (got.Size != tf.Length || got.Digest != digest.Digest(tf.Hashes["sha256"])):
				rt.Fatalf("%s: catalog has %d bytes %s, go-tuf %d bytes", p, got.Size, got.Digest, tf.Length)
			}
		}
	})
}

// benchRoles is a generation as relayd publishes it: targets delegating
// to security, software and rest (terminating, by path), rest to 1,024
// hashed bins holding n targets.
func benchRoles(b *testing.B, n int) (map[string]*role, []string) {
	mk := func() *metadata.Metadata[metadata.TargetsType] { return metadata.Targets(t0.Add(time.Hour)) }
	// levels is first/*, first/*/*, ... up to 16 segments ("" for any path).
	levels := func(first string) []string {
		var out []string
		segs := []string{}
		if first != "" {
			segs = append(segs, first)
		}
		for len(segs) < 16 {
			segs = append(segs, "*")
			out = append(out, strings.Join(segs, "/"))
		}
		return out
	}
	top := mk()
	top.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}, Roles: []metadata.DelegatedRole{
		{Name: "security", Terminating: true, Paths: levels("security")},
		{Name: "software", Terminating: true, Paths: levels("software")},
		{Name: "rest", Terminating: true, Paths: levels("")},
	}}
	rest := mk()
	s := &metadata.SuccinctRoles{BitLength: 10, NamePrefix: "rest-bin"}
	rest.Signed.Delegations = &metadata.Delegations{SuccinctRoles: s}
	roles := map[string]*role{"targets": {md: top}, "security": {md: mk()}, "software": {md: mk()}, "rest": {md: rest}}
	order := []string{"targets", "security", "software", "rest"}
	for _, bin := range s.GetRoles() {
		roles[bin] = &role{md: mk()}
		order = append(order, bin)
	}
	for i := range n {
		p := fmt.Sprintf("debian/pool/main/p/pkg%d/pkg_%d.1-2_amd64.deb", i%977, i)
		o := catalog.Object{Path: p, Size: int64(i), Digest: digest.FromBytes([]byte(p)), Kind: catalog.KindOther}
		tf, err := catalog.TargetFile(o)
		if err != nil {
			b.Fatal(err)
		}
		roles[s.GetRolesForTarget(p)[0].Name].md.Signed.Targets[p] = tf
	}
	return roles, order
}

// BenchmarkEnumerate reports the cost per target of building the catalog
// of 100,000 targets in 1,024 hashed bins.
func BenchmarkEnumerate(b *testing.B) {
	const n = 100_000
	roles, order := benchRoles(b, n)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		cat, _, err := enumerate(roles, order, 1, nil)
		if err != nil || len(cat.Objects) != n {
			b.Fatal(len(cat.Objects), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/target")
}

// BenchmarkEnumerateNext is the next generation after one bin changed:
// the entries of the kept roles are not converted again.
func BenchmarkEnumerateNext(b *testing.B) {
	const n = 100_000
	roles, order := benchRoles(b, n)
	cat, srcs, err := enumerate(roles, order, 1, nil)
	if err != nil {
		b.Fatal(err)
	}
	prev := &trustedSet{catalog: cat, srcs: srcs}
	changed := *roles["rest-bin-000"].md
	changed.Signed.Targets = maps.Clone(changed.Signed.Targets)
	for p, tf := range changed.Signed.Targets {
		c := *tf
		changed.Signed.Targets[p] = &c
	}
	roles["rest-bin-000"] = &role{md: &changed}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		cat, _, err := enumerate(roles, order, 2, prev)
		if err != nil || len(cat.Objects) != n {
			b.Fatal(len(cat.Objects), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/target")
}

// BenchmarkSearch is the search alone (which role wins each of 100,000
// paths in 1,024 bins), without building catalog objects.
func BenchmarkSearch(b *testing.B) {
	const n = 100_000
	roles, order := benchRoles(b, n)
	s := &searcher{tr: newTree(roles)}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		found := 0
		for _, name := range order {
			for path := range roles[name].md.Signed.Targets {
				p := target{path: path, buf: &s.buf}
				if w, _ := s.search(&p); w != nil {
					found++
				}
			}
		}
		if found != n {
			b.Fatal(found)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/target")
}

// TestDelegatedRoleNames: names that cannot be served or that collide
// with a top-level role are refused, and so are bins beyond MaxRoles.
func TestDelegatedRoleNames(t *testing.T) {
	for _, bad := range []string{"../x", "Upper", "snapshot", "a.b", strings.Repeat("x", 65)} {
		md := metadata.Targets(t0)
		md.Signed.Delegations = &metadata.Delegations{Roles: []metadata.DelegatedRole{{Name: bad}}}
		if _, err := delegatedRoles(md); err == nil {
			t.Errorf("role name %q accepted", bad)
		}
	}
	md := metadata.Targets(t0)
	md.Signed.Delegations = &metadata.Delegations{SuccinctRoles: &metadata.SuccinctRoles{BitLength: 17, NamePrefix: "b"}}
	if _, err := delegatedRoles(md); err == nil {
		t.Error("2^17 bins accepted")
	}
}

// TestEnumerationOrderAndTerminating: the first role in pre-order wins a
// path listed twice, and a terminating delegation below the top ends the
// search for its paths, roles after it included.
func TestEnumerationOrderAndTerminating(t *testing.T) {
	r := newRepo(t, t0)
	r.delegate("targets", "a", false, "*")
	r.delegate("targets", "b", false, "*")
	r.delegate("a", "a1", true, "x")
	want := r.add("a", "both", "a's")
	r.add("b", "both", "b's")
	r.add("b", "x", "cut off by a1, which does not list it")
	wantY := r.add("b", "y", "b's y")
	r.publish()
	c, err := New(r.files["1.root.json"], Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Update(context.Background(), r.serve())
	if err != nil {
		t.Fatal(err)
	}
	checkCatalog(t, st.Catalog, map[string]catalog.Object{"both": want, "y": wantY})
}
