package store

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/relayd/relayd/pkg/digest"
)

// TestConcurrentReadAt is stream-through: while one goroutine writes an
// object, others read what has been written so far through File().ReadAt
// and must see exactly the bytes written, before and after the commit.
func TestConcurrentReadAt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		known bool // size given to Create
	}{
		{name: "known size", known: true},
		{name: "unknown size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _ := openStore(t, Config{MaxBytes: 8 << 20, ReserveChunk: 256 << 10})
			data := randBytes(7, 2<<20+123)
			size := int64(-1)
			if tc.known {
				size = int64(len(data))
			}
			w, err := s.Create(size)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()

			// written is how far the writer has got; Written itself is
			// for the writing goroutine only, so it is published here as
			// a fill publishes its progress.
			var written atomic.Int64
			var reads atomic.Int64
			var wg sync.WaitGroup
			for r := range 4 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(r), 3))
					buf := make([]byte, 64<<10)
					for {
						n := written.Load()
						if n > 0 {
							off := rng.Int64N(n)
							l := min(int64(len(buf)), n-off)
							m, err := w.File().ReadAt(buf[:l], off)
							if err != nil || int64(m) != l || !bytes.Equal(buf[:m], data[off:off+l]) {
								t.Errorf("ReadAt(%d bytes at %d) with %d written: got %d bytes, %v, equal=%v",
									l, off, n, m, err, bytes.Equal(buf[:m], data[off:off+int64(m)]))
								return
							}
							reads.Add(1)
						}
						if n == int64(len(data)) {
							return
						}
						runtime.Gosched()
					}
				})
			}
			for p := data; len(p) > 0; {
				n := min(len(p), 8<<10+5)
				if _, err := w.Write(p[:n]); err != nil {
					t.Fatal(err)
				}
				p = p[n:]
				written.Store(w.Written())
			}
			wg.Wait()
			if reads.Load() == 0 {
				t.Fatal("no reads")
			}
			if _, err := w.Commit("k", Entry{}, digest.FromBytes(data)); err != nil {
				t.Fatal(err)
			}
			// Readers that started on the temp file keep reading after the
			// commit has moved it into place.
			tail := make([]byte, 1000)
			if _, err := w.File().ReadAt(tail, int64(len(data)-len(tail))); err != nil || !bytes.Equal(tail, data[len(data)-len(tail):]) {
				t.Fatalf("ReadAt after Commit: %v", err)
			}
			mustRead(t, s, "k", data)
		})
	}
}
