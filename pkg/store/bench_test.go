package store

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/units"
)

var benchSizes = []int{4 << 10, 1 << 20}

// BenchmarkGetOpenBlob is the hit path: look the key up, open its blob,
// close it (serving the bytes is the kernel's business).
func BenchmarkGetOpenBlob(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(units.Bytes(size).String(), func(b *testing.B) {
			s, _ := openStore(b, Config{})
			put(b, s, "debian/pool/main/h/hello/hello_2.10-3_amd64.deb", randBytes(1, size))
			b.ReportAllocs()
			for b.Loop() {
				hit(b, s, "debian/pool/main/h/hello/hello_2.10-3_amd64.deb")
			}
		})
	}
}

func hit(tb testing.TB, s *Store, key string) {
	e, err := s.Get(key)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := s.OpenBlob(e.Digest)
	if err != nil {
		tb.Fatal(err)
	}
	r.Close()
}

// BenchmarkCommit stores a new object (new bytes, new key) per iteration:
// temp file, hash, fsync, rename, index update.
func BenchmarkCommit(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(units.Bytes(size).String(), func(b *testing.B) {
			s, _ := openStore(b, Config{})
			data := randBytes(2, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			var i uint64
			for b.Loop() {
				i++
				binary.LittleEndian.PutUint64(data, i) // new bytes each time
				w, err := s.Create(int64(size))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := w.Write(data); err != nil {
					b.Fatal(err)
				}
				if _, err := w.Commit(fmt.Sprintf("obj/%d", i), Entry{}, digest.Digest{}); err != nil {
					b.Fatal(err)
				}
				w.Close()
			}
		})
	}
}

// maxHitAllocs pins the allocations of a hit (Get + OpenBlob + Close):
// 1 measured with Go 1.26 on linux/amd64 (the Reader: the entry comes
// from the entry cache, the blob's path and descriptor from its record),
// plus one of slack.
const maxHitAllocs = 2

// TestHitAllocs is not parallel: AllocsPerRun counts every allocation in
// the process.
func TestHitAllocs(t *testing.T) {
	s, _ := openStore(t, Config{})
	const key = "debian/pool/main/h/hello/hello_2.10-3_amd64.deb"
	put(t, s, key, randBytes(1, 4<<10))
	hit(t, s, key) // warm whatever is cached
	got := testing.AllocsPerRun(200, func() { hit(t, s, key) })
	t.Logf("Get+OpenBlob+Close: %.1f allocs", got)
	if got > maxHitAllocs {
		t.Errorf("Get+OpenBlob+Close allocates %.1f times, want at most %d", got, maxHitAllocs)
	}
}

// BenchmarkGetAfterEviction is a full cache on a miss: one object is
// committed, evicting the least recently used, then the 64 hot keys are
// looked up again (the timed part). Their entries must still come from
// the entry cache.
func BenchmarkGetAfterEviction(b *testing.B) {
	const size, hot = 4 << 10, 64
	s, _ := openStore(b, Config{MaxBytes: (hot + 8) * size})
	for i := range hot {
		put(b, s, fmt.Sprintf("hot/%d", i), randBytes(uint64(i), size))
	}
	b.ReportAllocs()
	var i uint64
	for b.Loop() {
		b.StopTimer()
		i++
		data := randBytes(1000+i, size)
		w, err := s.Create(size)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			b.Fatal(err)
		}
		if _, err := w.Commit(fmt.Sprintf("cold/%d", i), Entry{}, digest.Digest{}); err != nil {
			b.Fatal(err)
		}
		w.Close()
		b.StartTimer()
		for k := range hot {
			hit(b, s, fmt.Sprintf("hot/%d", k))
		}
	}
}
