package tufrepo

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/digest"
)

// syntheticObjects are n objects of realistic paths (no files).
func syntheticObjects(n int) []catalog.Object {
	objs := make([]catalog.Object, n)
	for i := range objs {
		p := fmt.Sprintf("software/linux-amd64/1.%d.%d/pkg-%06d-1.el9.x86_64.rpm", i%50, i%7, i)
		if i%3 == 0 {
			p = fmt.Sprintf("security/2026/CVE-2026-%05d/openssl-3.0.%d-1.el9.x86_64.rpm", i, i%20)
		}
		kind, plat, ver := catalog.Classify(p)
		objs[i] = catalog.Object{Path: p, Size: int64(1000 + i), Digest: digest.Digest(sha256.Sum256([]byte(p))), Kind: kind, Platform: plat, Version: ver}
	}
	return objs
}

// BenchmarkMetadata10k is what publishing 10,000 objects costs beside
// hashing: the first generation (every role built, signed, written), and
// an unchanged publish (load, verify, compare).
func BenchmarkMetadata10k(b *testing.B) {
	objs := syntheticObjects(10_000)
	ts, err := targetFiles(objs)
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, f *fixture) *change {
		s, err := load(f.tree)
		if err != nil {
			b.Fatal(err)
		}
		c, err := s.nextGeneration(f.ring, f.opt.complete(), ts, nil)
		if err != nil {
			b.Fatal(err)
		}
		if c != nil {
			if _, err := apply(s, c, ""); err != nil {
				b.Fatal(err)
			}
		}
		return c
	}
	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			f := newFixture(&testing.T{})
			f.init()
			b.StartTimer()
			run(b, f)
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		f := newFixture(&testing.T{})
		f.init()
		run(b, f)
		for b.Loop() {
			if c := run(b, f); c != nil {
				b.Fatal("unchanged wrote")
			}
		}
	})
}
