// Command gendata writes the benchmark corpus that the origin serves:
//
//	4k.bin, 64m.bin, 1g.bin             fixed-size objects
//	mix/0000.bin .. mix/0999.bin        sizes log-uniform in [4 KiB, 1 MiB]
//	corpus.txt                          "path size" per object, then a stamp line
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
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
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
	flag.Parse()
	if *out == "" {
		return errors.New("-out is required")
	}

	objs := []object{
		{"4k.bin", 4 << 10},
		{"64m.bin", 64 << 20},
		{"1g.bin", 1 << 30},
	}
	objs = append(objs, mixObjects(*seed, *mixN, 4<<10, 1<<20)...)

	stamp := fmt.Sprintf("# %s seed=%d mix=%d", version, *seed, *mixN)
	manifest := filepath.Join(*out, "corpus.txt")
	reuse := false
	if b, err := os.ReadFile(manifest); err == nil && strings.Contains(string(b), stamp+"\n") {
		reuse = true
	}
	if err := os.MkdirAll(filepath.Join(*out, "mix"), 0o755); err != nil {
		return err
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
