package catalog

import (
	"bytes"
	"errors"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"testing"
)

// endless is a body that never ends; it counts the bytes it handed out.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	e.n += int64(len(p))
	return len(p), nil
}

// untouchable fails the test if it is read at all.
type untouchable struct{ t *testing.T }

func (u untouchable) Read([]byte) (int, error) {
	u.t.Error("the body was read although its announced length is over the limit")
	return 0, io.EOF
}

// dribble hands out at most 7 bytes per Read, as a slow network does.
type dribble struct{ r io.Reader }

func (d dribble) Read(p []byte) (int, error) { return d.r.Read(p[:min(len(p), 7)]) }

func TestReadWhole(t *testing.T) {
	t.Parallel()
	body := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 7)
		}
		return b
	}
	const limit = 9 << 20
	for _, tc := range []struct {
		name  string
		body  []byte
		sized bool
	}{
		{"empty, sized", nil, true},
		{"empty, unsized", nil, false},
		{"small, sized", body(1000), true},
		{"small, unsized", body(1000), false},
		{"memory head exactly, unsized", body(memHead), false},
		{"memory head and one byte, unsized", body(memHead + 1), false},
		{"spooled, unsized", body(7<<20 + 3), false},
		{"exactly the limit, sized", body(limit), true},
		{"exactly the limit, unsized", body(limit), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			size := int64(-1)
			if tc.sized {
				size = int64(len(tc.body))
			}
			got, err := Read(dribbleIf(tc.body, len(tc.body) < 1<<20), size, limit, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.body) {
				t.Fatalf("read %d bytes, want the %d sent", len(got), len(tc.body))
			}
		})
	}
}

// dribbleIf reads b a few bytes at a time when slow is set (partial
// reads must be handled), at full speed otherwise.
func dribbleIf(b []byte, slow bool) io.Reader {
	if slow {
		return dribble{bytes.NewReader(b)}
	}
	return bytes.NewReader(b)
}

func TestReadRefuses(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	t.Run("announced over the limit: nothing read", func(t *testing.T) {
		_, err := Read(untouchable{t}, limit+1, limit, t.TempDir())
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("err = %v, want ErrTooLarge", err)
		}
	})
	t.Run("endless, unsized: stops at limit+1 bytes", func(t *testing.T) {
		e := &endless{}
		b, err := Read(e, -1, limit, t.TempDir())
		if !errors.Is(err, ErrTooLarge) || b != nil {
			t.Fatalf("got %d bytes, err = %v; want nothing and ErrTooLarge", len(b), err)
		}
		if e.n != limit+1 {
			t.Fatalf("read %d bytes of an endless body, want limit+1 = %d", e.n, limit+1)
		}
	})
	t.Run("longer than announced", func(t *testing.T) {
		e := &endless{}
		_, err := Read(e, 1000, limit, t.TempDir())
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("err = %v, want ErrTooLarge", err)
		}
		if e.n > limit+1 {
			t.Fatalf("read %d bytes, want at most %d", e.n, limit+1)
		}
	})
	t.Run("shorter than announced", func(t *testing.T) {
		_, err := Read(bytes.NewReader(make([]byte, 10)), 11, limit, t.TempDir())
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("limit 0", func(t *testing.T) {
		if _, err := Read(bytes.NewReader(nil), 0, 0, ""); err == nil {
			t.Fatal("a limit of 0 was accepted")
		}
	})
}

// TestReadAllocationBounded pins what a catalog of unknown length costs.
// An endless one: the 1 MiB memory head, on every try (the rest goes to
// the spool file and is never read back), and nothing kept after. One of
// exactly the limit: the limit once, plus the head (joining chunks held
// in memory, the old way, allocated twice the limit; io.ReadAll over an
// io.LimitReader of limit+1 two to three times). Not parallel: it reads
// the process's allocation counters.
func TestReadAllocationBounded(t *testing.T) {
	const limit = 32 << 20
	const tries = 4
	const small = 256 << 10 // copy buffers, the file, errors
	dir := t.TempDir()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range tries {
		if _, err := Read(&endless{}, -1, limit, dir); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("err = %v, want ErrTooLarge", err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perTry := int64(after.TotalAlloc-before.TotalAlloc) / tries
	if want := int64(memHead + small); perTry > want {
		t.Errorf("an endless body cost %d bytes of allocation per try, want at most the memory head + %d KiB = %d", perTry, small>>10, want)
	}
	if kept := int64(after.HeapAlloc) - int64(before.HeapAlloc); kept > 4<<20 {
		t.Errorf("%d bytes still allocated after the refused reads", kept)
	}

	// A body of exactly the limit, without a length: one buffer of its
	// size, beside the head. (A plain reader, as a network body is: no
	// WriteTo for io.Copy to take.)
	runtime.GC()
	runtime.ReadMemStats(&before)
	b, err := Read(struct{ io.Reader }{io.LimitReader(&endless{}, limit)}, -1, limit, dir)
	runtime.ReadMemStats(&after)
	if err != nil || len(b) != limit {
		t.Fatalf("read %d bytes, err %v; want the %d sent", len(b), err, limit)
	}
	if got, want := int64(after.TotalAlloc-before.TotalAlloc), int64(limit+memHead+small); got > want {
		t.Errorf("an unsized body of exactly the limit (%d MiB) cost %.1f MiB of allocation, want at most limit + memory head + %d KiB = %.1f MiB",
			limit>>20, float64(got)/(1<<20), small>>10, float64(want)/(1<<20))
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("the spool directory holds %d entries (err %v), want none", len(ents), err)
	}

	// A body of known length is one allocation of exactly its size.
	data := make([]byte, 1<<20)
	r := bytes.NewReader(data)
	allocs := testing.AllocsPerRun(10, func() {
		r.Reset(data)
		b, err := Read(r, int64(len(data)), limit, "")
		if err != nil || len(b) != len(data) || cap(b) > len(data)+1 {
			t.Fatalf("read %d bytes (cap %d), err %v", len(b), cap(b), err)
		}
	})
	if allocs != 1 {
		t.Errorf("a sized read made %v allocations, want 1", allocs)
	}
}

// TestRefusedBodiesAreReleased: the memory of a refused body is handed
// back before Read returns, so retries do not pile garbage up while the
// collector waits for a goal set by the body itself (a relay runs at
// GOGC=400). Not parallel: it sets the GC percentage and reads the heap.
func TestRefusedBodiesAreReleased(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	const limit = 8 << 20
	long := bytes.Repeat([]byte("x"), 4<<20)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	for i := range 5 {
		if _, err := Read(&endless{}, -1, limit, t.TempDir()); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("endless: err = %v", err)
		}
		// A length announced short of the body: the whole buffer was
		// allocated, then refused.
		if _, err := Read(bytes.NewReader(long), int64(len(long))-1, limit, ""); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("longer than announced: err = %v", err)
		}
		runtime.ReadMemStats(&ms) // no collection of its own
		if held := int64(ms.HeapAlloc) - int64(base); held > 2<<20 {
			t.Fatalf("after %d refused bodies the heap holds %d MiB more than before", i+1, held>>20)
		}
	}
}

// FuzzRead: whatever the body and its announced length, Read never takes
// more than limit+1 bytes from the body, and returns the body exactly when
// it is within the limit and as long as announced.
func FuzzRead(f *testing.F) {
	f.Add([]byte(`{"signed":{"_type":"timestamp"},"signatures":[]}`), int64(-1), int64(16))
	f.Add([]byte("abc"), int64(3), int64(3))
	f.Add([]byte("abcd"), int64(3), int64(8))
	f.Add(bytes.Repeat([]byte("z"), 70000), int64(-1), int64(65537))
	f.Fuzz(func(t *testing.T, body []byte, size, limit int64) {
		if limit <= 0 || limit > 1<<20 {
			return
		}
		r := &countingReader{r: bytes.NewReader(body)}
		got, err := Read(r, size, limit, "")
		if r.n > limit+1 {
			t.Fatalf("took %d bytes with limit %d", r.n, limit)
		}
		ok := int64(len(body)) <= limit && (size < 0 || size == int64(len(body)))
		if ok != (err == nil) {
			t.Fatalf("%d bytes, announced %d, limit %d: err %v", len(body), size, limit, err)
		}
		if err == nil && !bytes.Equal(got, body) {
			t.Fatalf("read %d bytes, not the %d sent", len(got), len(body))
		}
	})
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestReadSpoolFallback: a spool directory that cannot take the file (gone,
// say) does not fail the read: the system's temp directory is used.
func TestReadSpoolFallback(t *testing.T) {
	t.Parallel()
	body := bytes.Repeat([]byte("fallback"), memHead/4) // two memory heads
	got, err := Read(struct{ io.Reader }{bytes.NewReader(body)}, -1, 8<<20, t.TempDir()+"/missing")
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read %d of %d bytes, err %v", len(got), len(body), err)
	}
}
