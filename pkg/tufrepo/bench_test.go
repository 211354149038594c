package tufrepo

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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
			f := newFixture(b)
			f.init()
			b.StartTimer()
			run(b, f)
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		f := newFixture(b)
		f.init()
		run(b, f)
		for b.Loop() {
			if c := run(b, f); c != nil {
				b.Fatal("unchanged wrote")
			}
		}
	})
}

// BenchmarkPublish10k publishes one tree of 10,000 files (64 MiB by
// default; RELAYD_BENCH_TREE_BYTES for more) as the TUF repository: a
// first publish each time. (The old relayd-catalog-v1 format is compared
// with a binary built from commit 3fbd3f4: scripts/bench.)
func BenchmarkPublish10k(b *testing.B) {
	const n = 10_000
	total := int64(64 << 20)
	if v, err := strconv.ParseInt(os.Getenv("RELAYD_BENCH_TREE_BYTES"), 10, 64); err == nil && v > 0 {
		total = v
	}
	f := newFixture(b)
	f.init()
	buf := make([]byte, total/n)
	for i := range n {
		buf[0], buf[1] = byte(i), byte(i>>8)
		p := filepath.Join(f.tree, fmt.Sprintf("d%02d", i%100), fmt.Sprintf("s%d", i%7), fmt.Sprintf("f%05d.bin", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("tuf", func(b *testing.B) {
		b.SetBytes(total)
		for b.Loop() {
			b.StopTimer()
			dir := filepath.Join(f.tree, "-", "tuf")
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if e.Name() != "1.root.json" {
					os.Remove(filepath.Join(dir, e.Name()))
				}
			}
			b.StartTimer()
			if res, err := Publish(context.Background(), f.tree, f.ring, f.opt); err != nil || res.Generation != 1 {
				b.Fatal(res, err)
			}
		}
	})
}
