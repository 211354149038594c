package tufrepo

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/digest"
)

// One changed object among 100,000: what a client fetches (timestamp,
// snapshot, one bin) stays under 64 KiB. Paths are realistic (about 60
// bytes); the metadata is built without hashing files.
func TestOneChangeAmong100kFetchesUnder64KiB(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 targets")
	}
	f := newFixture(t)
	f.init()
	objs := make([]catalog.Object, 100_000)
	for i := range objs {
		p := fmt.Sprintf("software/linux-amd64/1.%d.%d/pkg-%06d-1.el9.x86_64.rpm", i%50, i%7, i)
		if i%3 == 0 {
			p = fmt.Sprintf("security/2026/CVE-2026-%05d/openssl-3.0.%d-1.el9.x86_64.rpm", i, i%20)
		}
		kind, plat, ver := catalog.Classify(p)
		objs[i] = catalog.Object{Path: p, Size: int64(1000 + i), Digest: digest.Digest(sha256.Sum256([]byte(p))), Kind: kind, Platform: plat, Version: ver}
	}
	gen := func() *Result {
		t.Helper()
		s, err := load(f.tree)
		if err != nil {
			t.Fatal(err)
		}
		ts, err := targetFiles(objs)
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.nextGeneration(f.ring, f.opt.complete(), ts, nil)
		if err != nil || c == nil {
			t.Fatalf("generation: %v", err)
		}
		res, err := apply(s, c, "")
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	gen()
	objs[12345].Digest = digest.Digest(sha256.Sum256([]byte("changed")))
	res := gen()
	var total int64
	var names []string
	for _, name := range res.Written {
		st, err := os.Stat(filepath.Join(f.tree, "-", "tuf", name))
		if err != nil {
			t.Fatal(err)
		}
		total += st.Size()
		names = append(names, fmt.Sprintf("%s (%d B)", name, st.Size()))
	}
	t.Logf("one change among 100,000: %d bytes to fetch: %s", total, strings.Join(names, ", "))
	if len(res.Written) != 3 || !strings.Contains(res.Written[0], "-bin-") {
		t.Fatalf("wrote %v, want one bin, the snapshot, the timestamp", res.Written)
	}
	if total >= 64<<10 {
		t.Fatalf("a client fetches %d bytes for one change among 100,000, want < 64 KiB", total)
	}
}
