// Command gendata writes the benchmark corpus that the origin serves:
//
//	4k.bin, 64m.bin, 1g.bin             fixed-size objects
//	mix/0000.bin .. mix/0999.bin        sizes log-uniform in [4 KiB, 1 MiB]
//	corpus.txt                          "path size" per object, then a stamp line
//
// With -tree N it writes instead a tree to publish (the publish and mirror
// scenarios): N objects totalling exactly -tree-bytes, laid out like an
// update tree (security/…, software/<platform>/<version>/…, other/…), with
// its manifest next to it in <out>.txt, not inside it. Files in the tree
// that the manifest does not list are removed (the "-" directory, where
// relayd publish writes the catalog, is left alone).
//
// Bytes are pseudo-random (PCG seeded from -seed and the object's path), so
// two clones produce byte-identical corpora and nothing compresses. A corpus
// whose stamp matches -seed and -mix is reused: files of the right size are
// not rewritten, which makes a second run take well under a second.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// version changes whenever the byte stream for a given seed changes, so an
// old corpus is rewritten instead of silently reused.
const version = "relayd-bench-corpus/1"

type object struct {
	path string // relative to the corpus root, slash-separated
	size int64
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gendata:", err)
		os.Exit(1)
	}
}

func run() error {
	out := flag.String("out", "", "corpus root directory (created if missing)")
	seed := flag.Uint64("seed", 1, "seed for sizes and contents")
	mixN := flag.Int("mix", 1000, "number of mix/NNNN.bin objects")
	treeN := flag.Int("tree", 0, "write a publish tree of this many objects instead of the corpus")
	treeBytes := flag.Int64("tree-bytes", 1<<30, "total size of the -tree objects")
	flag.Parse()
	if *out == "" {
		return errors.New("-out is required")
	}
	*out = filepath.Clean(*out)

	var objs []object
	var stamp, manifest string
	if *treeN > 0 {
		if *treeBytes < int64(*treeN) {
			return fmt.Errorf("-tree-bytes %d is less than one byte per object", *treeBytes)
		}
		objs = treeObjects(*seed, *treeN, *treeBytes)
		stamp = fmt.Sprintf("# %s tree seed=%d objects=%d bytes=%d", version, *seed, *treeN, *treeBytes)
		manifest = *out + ".txt"
	} else {
		objs = []object{
			{"4k.bin", 4 << 10},
			{"64m.bin", 64 << 20},
			{"1g.bin", 1 << 30},
		}
		objs = append(objs, mixObjects(*seed, *mixN, 4<<10, 1<<20)...)
		stamp = fmt.Sprintf("# %s seed=%d mix=%d", version, *seed, *mixN)
		manifest = filepath.Join(*out, "corpus.txt")
	}
	reuse := false
	if b, err := os.ReadFile(manifest); err == nil && strings.Contains(string(b), stamp+"\n") {
		reuse = true
	}
	if err := mkdirs(*out, objs); err != nil {
		return err
	}
	if *treeN > 0 {
		if err := prune(*out, objs); err != nil {
			return err
		}
	}

	// Write files on all CPUs; the generator is cheaper than the disk, so
	// this mostly overlaps page-cache copies.
	work := make(chan object)
	errc := make(chan error, len(objs))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var written int64
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				n, err := ensure(*out, o, *seed, reuse)
				if err != nil {
					errc <- err
					continue
				}
				mu.Lock()
				written += n
				mu.Unlock()
			}
		}()
	}
	for _, o := range objs {
		work <- o
	}
	close(work)
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}

	var sb strings.Builder
	var total int64
	for _, o := range objs {
		fmt.Fprintf(&sb, "/%s %d\n", o.path, o.size)
		total += o.size
	}
	sb.WriteString(stamp + "\n")
	if err := writeAtomic(manifest, []byte(sb.String())); err != nil {
		return err
	}
	fmt.Printf("gendata: %s objects=%d bytes=%d written=%d\n", *out, len(objs), total, written)
	return nil
}

// mixObjects returns n objects whose sizes are log-uniform in [lo, hi]: as
// many objects between 4 and 8 KiB as between 512 KiB and 1 MiB, roughly the
// shape of a package repository.
func mixObjects(seed uint64, n int, lo, hi int64) []object {
	rng := rand.New(rand.NewPCG(seed, 0x6d6978)) // "mix"
	llo, lhi := math.Log(float64(lo)), math.Log(float64(hi))
	objs := make([]object, n)
	for i := range objs {
		size := int64(math.Round(math.Exp(llo + rng.Float64()*(lhi-llo))))
		objs[i] = object{fmt.Sprintf("mix/%04d.bin", i), min(max(size, lo), hi)}
	}
	return objs
}

// treeObjects returns n objects totalling exactly total bytes, laid out
// like a published update tree: security/<year>/SA-<id>/…,
// software/<platform>/<version>/… (with one large installer in some
// version directories) and other/<area>/<dir>/…. Sizes are log-uniform in
// [256 B, 1 MiB] for most objects and in [2 MiB, 16 MiB] for one in 200
// (the installers), then scaled so the sum is exactly total.
func treeObjects(seed uint64, n int, total int64) []object {
	rng := rand.New(rand.NewPCG(seed, 0x74726565)) // "tree"
	logUniform := func(lo, hi float64) float64 {
		return math.Exp(math.Log(lo) + rng.Float64()*(math.Log(hi)-math.Log(lo)))
	}
	platforms := []string{"linux-amd64", "linux-arm64", "windows-amd64", "darwin-arm64"}
	areas := []string{"docs", "tools", "firmware", "data"}
	ver := func(v int) string { return fmt.Sprintf("%d.%d.%d", 1+v/25, (v/5)%5, v%5) }
	large := n / 200
	objs := make([]object, 0, n)
	raw := make([]float64, 0, n)
	for i := range large {
		objs = append(objs, object{path: fmt.Sprintf("software/%s/%s/installer.bin", platforms[i%4], ver(i/4))})
		raw = append(raw, logUniform(2<<20, 16<<20))
	}
	var sec, sw, other int
	for len(objs) < n {
		var p string
		switch r := rng.IntN(20); {
		case r < 3: // 15 % security advisories, 5 files each
			p = fmt.Sprintf("security/%d/SA-%04d/file-%d.bin", 2019+(sec/5)%7, sec/5, sec%5)
			sec++
		case r < 15: // 60 % software packages, 40 per version directory
			j := sw / 4
			p = fmt.Sprintf("software/%s/%s/pkg-%02d.bin", platforms[sw%4], ver(j/40), j%40)
			sw++
		default: // 25 % other
			j := other / 4
			p = fmt.Sprintf("other/%s/%03d/doc-%02d.bin", areas[other%4], j/50, j%50)
			other++
		}
		objs = append(objs, object{path: p})
		raw = append(raw, logUniform(256, 1<<20))
	}
	var sum float64
	for _, r := range raw {
		sum += r
	}
	var got int64
	biggest := 0
	for i, r := range raw {
		objs[i].size = max(1, int64(math.Round(r*float64(total)/sum)))
		got += objs[i].size
		if objs[i].size > objs[biggest].size {
			biggest = i
		}
	}
	objs[biggest].size += total - got // rounding: the sum is exact
	return objs
}

// mkdirs creates the directories the objects live in.
func mkdirs(root string, objs []object) error {
	done := map[string]bool{}
	for _, o := range objs {
		d := filepath.Dir(filepath.Join(root, filepath.FromSlash(o.path)))
		if done[d] {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		done[d] = true
	}
	return nil
}

// prune removes the regular files under root that objs does not list,
// outside root/- (where relayd publish keeps the catalog).
func prune(root string, objs []object) error {
	keep := make(map[string]bool, len(objs))
	for _, o := range objs {
		keep[o.path] = true
	}
	var stale []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir() && rel == "-":
			return filepath.SkipDir
		case d.IsDir():
			return nil
		case !keep[rel]:
			stale = append(stale, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(stale)
	for _, p := range stale {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	return nil
}

// ensure writes o under root unless reuse is set and a file of the right
// size is already there. It returns the number of bytes written.
func ensure(root string, o object, seed uint64, reuse bool) (int64, error) {
	dst := filepath.Join(root, filepath.FromSlash(o.path))
	if st, err := os.Stat(dst); reuse && err == nil && st.Size() == o.size {
		return 0, nil
	}
	h := fnv.New64a()
	h.Write([]byte(o.path))
	rng := rand.NewPCG(seed, h.Sum64())

	tmp := dst + ".part"
	f, err := os.Create(tmp)
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 1<<20)
	for left := o.size; left > 0; {
		for i := 0; i < len(buf); i += 8 {
			binary.LittleEndian.PutUint64(buf[i:], rng.Uint64())
		}
		n := min(left, int64(len(buf)))
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return 0, err
		}
		left -= n
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	return o.size, os.Rename(tmp, dst)
}

func writeAtomic(path string, b []byte) error {
	if err := os.WriteFile(path+".part", b, 0o644); err != nil {
		return err
	}
	return os.Rename(path+".part", path)
}
