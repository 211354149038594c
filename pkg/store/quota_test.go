package store

// Quota and eviction: LRU order, pinning by readers, ErrFull and
// ErrTooLarge, writers of unknown size, and floods of concurrent writers.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/digest"
)

func TestEvictLRU(t *testing.T) {
	t.Parallel()
	const (
		max  = 1 << 20
		size = 200 << 10 // five fit, the sixth evicts
	)
	s, clk := openStore(t, Config{MaxBytes: max})
	data := make([][]byte, 8)
	for i := range data {
		data[i] = randBytes(uint64(100+i), size)
	}
	for i := range 5 {
		put(t, s, key(i), data[i])
		clk.Advance(time.Second)
	}
	if st := s.Stats(); st.Evictions != 0 || st.Blobs != 5 {
		t.Fatalf("five objects within quota: Stats() = %+v", st)
	}
	// Reading obj0 makes obj1 the least recently used.
	readBlob(t, s, digest.FromBytes(data[0]))
	clk.Advance(time.Second)

	for _, step := range []struct{ add, gone int }{{5, 1}, {6, 2}, {7, 3}} {
		put(t, s, key(step.add), data[step.add])
		clk.Advance(time.Second)
		mustBeGone(t, s, key(step.gone))
		st := s.Stats()
		if st.Bytes > max || st.Bytes+st.Reserved > max {
			t.Fatalf("over quota: %+v", st)
		}
		if want := int64(step.add - 4); st.Evictions != want {
			t.Fatalf("Evictions = %d, want %d", st.Evictions, want)
		}
	}
	for _, i := range []int{0, 4, 5, 6, 7} {
		mustRead(t, s, key(i), data[i])
	}
	checkConsistent(t, s, keys(8))
}

// TestEvictionDropsEveryKey: a blob shared by two keys is evicted once and
// both keys go with it.
func TestEvictionDropsEveryKey(t *testing.T) {
	t.Parallel()
	const unit = 100 << 10
	s, clk := openStore(t, Config{MaxBytes: 2 * unit})
	shared := randBytes(1, unit)
	put(t, s, "a", shared)
	put(t, s, "b", shared)
	clk.Advance(time.Second)
	put(t, s, "c", randBytes(2, unit))
	clk.Advance(time.Second)
	put(t, s, "d", randBytes(3, unit))
	mustBeGone(t, s, "a")
	mustBeGone(t, s, "b")
	if st := s.Stats(); st.Evictions != 1 || st.Blobs != 2 {
		t.Fatalf("Stats() = %+v, want one eviction and two blobs", st)
	}
	checkConsistent(t, s, []string{"a", "b", "c", "d"})
}

func TestReaderPinsBlob(t *testing.T) {
	t.Parallel()
	const unit = 256 << 10
	s, clk := openStore(t, Config{MaxBytes: 1 << 20})
	pinned := randBytes(7, unit)
	e := put(t, s, "pinned", pinned)
	r, err := s.OpenBlob(e.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Read a little now, the rest after the flood.
	head := make([]byte, 1000)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		clk.Advance(time.Second)
		put(t, s, key(i), randBytes(uint64(1000+i), unit))
		if !s.Has(e.Digest) {
			t.Fatalf("blob with an open reader evicted after %d more objects", i+1)
		}
		if st := s.Stats(); st.Bytes > st.MaxBytes {
			t.Fatalf("over quota: %+v", st)
		}
	}
	// Get, not OpenBlob: a new read would make it the most recent.
	if e2, err := s.Get("pinned"); err != nil || e2.Digest != e.Digest {
		t.Fatalf("Get(pinned) after the flood = %+v, %v", e2, err)
	}
	rest, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(append(head, rest...), pinned) {
		t.Fatalf("pinned reader read %d bytes, %v; want the original bytes", len(head)+len(rest), err)
	}
	// Released, it is the least recently used and goes next.
	r.Close()
	put(t, s, "next", randBytes(2000, unit))
	mustBeGone(t, s, "pinned")
	checkConsistent(t, s, append(keys(20), "pinned", "next"))
}

func TestFullWhenEverythingInUse(t *testing.T) {
	t.Parallel()
	const unit = 256 << 10
	s, _ := openStore(t, Config{MaxBytes: 4 * unit})
	var readers []*Reader
	for i := range 4 {
		e := put(t, s, key(i), randBytes(uint64(i), unit))
		r, err := s.OpenBlob(e.Digest)
		if err != nil {
			t.Fatal(err)
		}
		readers = append(readers, r)
	}
	before := s.Stats()
	for _, size := range []int64{1, unit, 4 * unit, -1} {
		if w, err := s.Create(size); !errors.Is(err, ErrFull) {
			if w != nil {
				w.Abort()
				w.Close()
			}
			t.Fatalf("Create(%d) with every blob read: err = %v, want ErrFull", size, err)
		}
	}
	if got := s.Stats(); got != before {
		t.Fatalf("failed reservations changed Stats(): %+v, was %+v", got, before)
	}
	// A writer in progress counts as in use too.
	readers[0].Close()
	w, err := s.Create(unit)
	if err != nil {
		t.Fatalf("Create after releasing one blob: %v", err)
	}
	if _, err := s.Create(1); !errors.Is(err, ErrFull) {
		t.Fatalf("Create with every byte read or reserved: err = %v, want ErrFull", err)
	}
	w.Abort()
	w.Close()
	for _, r := range readers[1:] {
		r.Close()
	}
	mustBeGone(t, s, key(0))
	for i := 1; i < 4; i++ {
		if _, err := s.Get(key(i)); err != nil {
			t.Fatalf("Get(%s): %v", key(i), err)
		}
	}
	checkConsistent(t, s, keys(4))
}

// TestFullKeepsLRUOrder: a reservation that fails puts the blobs it had
// picked back in their LRU order, so the next eviction still takes the
// least recently used.
func TestFullKeepsLRUOrder(t *testing.T) {
	t.Parallel()
	const unit = 64 << 10
	s, clk := openStore(t, Config{MaxBytes: 4 * unit})
	for i := range 4 {
		put(t, s, key(i), randBytes(uint64(i), unit))
		clk.Advance(time.Second)
	}
	r, err := s.OpenBlob(digest.FromBytes(randBytes(3, unit)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := s.Create(4 * unit); !errors.Is(err, ErrFull) {
		t.Fatalf("Create(whole quota) with one blob read: err = %v, want ErrFull", err)
	}
	for i, gone := range []int{0, 1, 2} {
		put(t, s, fmt.Sprintf("new%d", i), randBytes(uint64(50+i), unit))
		clk.Advance(time.Second)
		mustBeGone(t, s, key(gone))
	}
	checkConsistent(t, s, keys(4))
}

func TestTooLarge(t *testing.T) {
	t.Parallel()
	const max = 1 << 20
	for _, tc := range []struct {
		name  string
		size  int64 // given to Create
		write int   // bytes then written
		chunk int64 // ReserveChunk
	}{
		{name: "known size", size: max + 1, chunk: 64 << 10},
		{name: "unknown size, small chunks", size: -1, write: max + 1, chunk: 64 << 10},
		{name: "unknown size, uneven chunks", size: -1, write: max + 1, chunk: 300 << 10},
		{name: "unknown size, chunk above quota", size: -1, write: max + 1, chunk: 4 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _ := openStore(t, Config{MaxBytes: max, ReserveChunk: tc.chunk})
			put(t, s, "small", []byte("small"))
			w, err := s.Create(tc.size)
			if tc.size > max {
				if !errors.Is(err, ErrTooLarge) {
					t.Fatalf("Create(%d) err = %v, want ErrTooLarge", tc.size, err)
				}
			} else {
				if err != nil {
					t.Fatalf("Create(%d): %v", tc.size, err)
				}
				defer w.Close()
				data := randBytes(9, tc.write)
				var werr error
				for p := data; len(p) > 0 && werr == nil; {
					n := min(len(p), 10<<10)
					_, werr = w.Write(p[:n])
					p = p[n:]
				}
				if !errors.Is(werr, ErrTooLarge) {
					t.Fatalf("writing %d bytes into a %d quota: err = %v, want ErrTooLarge", tc.write, max, werr)
				}
				w.Abort()
			}
			if st := s.Stats(); st.Reserved != 0 {
				t.Fatalf("Reserved = %d after the refused object", st.Reserved)
			}
			checkConsistent(t, s, []string{"small"})
		})
	}
}

func TestUnknownSize(t *testing.T) {
	t.Parallel()
	const (
		max   = 1 << 20
		chunk = 64 << 10
	)
	t.Run("reserves in chunks", func(t *testing.T) {
		t.Parallel()
		s, _ := openStore(t, Config{MaxBytes: max, ReserveChunk: chunk})
		w, err := s.Create(-1)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if got := s.Stats().Reserved; got != chunk {
			t.Fatalf("Reserved = %d after Create(-1), want one chunk %d", got, chunk)
		}
		data := randBytes(1, 100<<10)
		for i, p := 0, data; len(p) > 0; i++ {
			n := min(len(p), 10<<10)
			if _, err := w.Write(p[:n]); err != nil {
				t.Fatal(err)
			}
			p = p[n:]
			st := s.Stats()
			if st.Reserved < w.Written() || st.Reserved > w.Written()+chunk {
				t.Fatalf("after %d bytes Reserved = %d, want between written and written+chunk", w.Written(), st.Reserved)
			}
		}
		if _, err := w.Commit("k", Entry{}, digest.FromBytes(data)); err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.Reserved != 0 || st.Bytes != int64(len(data)) {
			t.Fatalf("after commit Stats() = %+v, want %d bytes, nothing reserved", st, len(data))
		}
		mustRead(t, s, "k", data)
	})
	t.Run("growth evicts and respects the quota", func(t *testing.T) {
		t.Parallel()
		s, clk := openStore(t, Config{MaxBytes: max, ReserveChunk: chunk})
		for i := range 8 {
			put(t, s, key(i), randBytes(uint64(i), 128<<10)) // fills the quota
			clk.Advance(time.Second)
		}
		w, err := s.Create(-1)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		data := randBytes(99, 600<<10)
		for p := data; len(p) > 0; {
			n := min(len(p), 10<<10)
			if _, err := w.Write(p[:n]); err != nil {
				t.Fatalf("Write at %d: %v", w.Written(), err)
			}
			p = p[n:]
			if st := s.Stats(); st.Bytes+st.Reserved > max {
				t.Fatalf("over quota at %d bytes written: %+v", w.Written(), st)
			}
		}
		if _, err := w.Commit("big", Entry{}, digest.Digest{}); err != nil {
			t.Fatal(err)
		}
		// 600 KiB displaced the five oldest 128 KiB objects.
		for i := range 8 {
			if _, err := s.Get(key(i)); errors.Is(err, ErrNotFound) != (i < 5) {
				t.Errorf("Get(%s) err = %v; want gone iff among the five oldest", key(i), err)
			}
		}
		checkConsistent(t, s, append(keys(8), "big"))
	})
	t.Run("object close to the quota fits", func(t *testing.T) {
		// Chunks that do not divide the quota must not push the
		// reservation past it: 1000 KiB fit in 1 MiB.
		t.Parallel()
		s, _ := openStore(t, Config{MaxBytes: max, ReserveChunk: 300 << 10})
		data := randBytes(5, 1000<<10)
		if _, err := tryPut(s, "k", data, -1); err != nil {
			t.Fatalf("unknown-size object of %d bytes in a %d quota: %v", len(data), max, err)
		}
		mustRead(t, s, "k", data)
		checkConsistent(t, s, []string{"k"})
	})
	t.Run("chunk larger than the quota", func(t *testing.T) {
		t.Parallel()
		s, _ := openStore(t, Config{MaxBytes: max, ReserveChunk: 4 << 20})
		w, err := s.Create(-1)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if got := s.Stats().Reserved; got != max {
			t.Fatalf("Reserved = %d, want it capped at the quota %d", got, max)
		}
		data := randBytes(6, max)
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Commit("k", Entry{}, digest.FromBytes(data)); err != nil {
			t.Fatal(err)
		}
		mustRead(t, s, "k", data)
	})
}

// TestReaderReleaseAfterRecommit: closing a Reader of a blob that was
// deleted and then stored again must not unpin the new blob another
// Reader holds.
func TestReaderReleaseAfterRecommit(t *testing.T) {
	t.Parallel()
	const unit = 64 << 10
	s, clk := openStore(t, Config{MaxBytes: 2 * unit})
	data := randBytes(1, unit)
	d := digest.FromBytes(data)
	put(t, s, "k1", data)
	old, err := s.OpenBlob(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("k1"); err != nil {
		t.Fatal(err)
	}
	put(t, s, "k2", data) // the same bytes, a new blob
	cur, err := s.OpenBlob(d)
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	old.Close()
	clk.Advance(time.Second)
	put(t, s, "b", randBytes(2, unit))
	clk.Advance(time.Second)
	put(t, s, "c", randBytes(3, unit)) // must evict b, not the read blob
	if !s.Has(d) {
		t.Fatal("blob evicted while a Reader has it open")
	}
	mustRead(t, s, "k2", data)
	mustBeGone(t, s, "b")
	checkConsistent(t, s, []string{"k2", "b", "c"})
}

// TestCommitDuringEviction orders the race TestRecommitWhileEvicting
// looks for: a commit of bytes X waits for the store's file lock while a
// reservation picks the blob X to evict. Whichever goes first, the key the
// commit wrote must then read X.
func TestCommitDuringEviction(t *testing.T) {
	t.Parallel()
	const unit = 64 << 10
	s, _ := openStore(t, Config{MaxBytes: 2 * unit})
	x := randBytes(1, unit)
	put(t, s, "x0", x)
	w, err := s.Create(unit)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(x); err != nil {
		t.Fatal(err)
	}

	s.wmu.Lock() // held by "a commit in progress"
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := w.Commit("x1", Entry{}, digest.FromBytes(x)); err != nil {
			t.Errorf("Commit(x1): %v", err)
		}
	})
	waitBlocked(t, "(*Writer).Commit")
	// The quota is full (x0 plus the commit's reservation): this Create
	// must evict x0's blob, which is the very blob being committed again.
	wg.Go(func() {
		w2, err := s.Create(unit)
		if err != nil {
			t.Errorf("Create: %v", err)
			return
		}
		w2.Abort()
		w2.Close()
	})
	waitBlocked(t, "(*Store).reserve")
	s.wmu.Unlock()
	wg.Wait()

	mustRead(t, s, "x1", x)
	checkConsistent(t, s, []string{"x0", "x1"})
}

// waitBlocked waits until a goroutine whose stack has fn is blocked on a
// mutex.
func waitBlocked(t *testing.T, fn string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.Stack(buf, true)
		for g := range strings.SplitSeq(string(buf[:n]), "\n\n") {
			if strings.Contains(g, fn) && strings.Contains(g, "sync.(*Mutex).Lock") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no goroutine in %s blocked on a mutex after 10s", fn)
		}
		time.Sleep(time.Millisecond) // poll
	}
}

// TestRecommitWhileEvicting stores the same few contents again and again
// under new keys with a quota that holds only some of them, so that a blob
// is often committed again while it is being evicted. Memory, index and
// disk must still agree afterwards.
func TestRecommitWhileEvicting(t *testing.T) {
	t.Parallel()
	const (
		unit    = 32 << 10
		workers = 8
		rounds  = 40
	)
	// Four fit, and there are five: every commit may evict a blob that
	// another writer is about to commit again.
	s, _ := openStore(t, Config{MaxBytes: 4 * unit})
	pool := make([][]byte, 5)
	for i := range pool {
		pool[i] = randBytes(uint64(i), unit)
	}
	ev := newEvents()
	var wg sync.WaitGroup
	keyCh := make(chan string, workers*rounds)
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range rounds {
				k := fmt.Sprintf("w%d/%d", w, i)
				data := pool[rng.IntN(len(pool))]
				if _, err := putRetry(s, ev, k, data, int64(len(data))); err != nil {
					t.Errorf("put %s: %v", k, err)
					return
				}
				keyCh <- k
				// Read something recent to move it in the LRU.
				if e, err := s.Get(k); err == nil {
					if r, err := s.OpenBlob(e.Digest); err == nil {
						_, _ = io.Copy(io.Discard, r)
						r.Close()
						ev.happened()
					}
				}
			}
		})
	}
	wg.Wait()
	close(keyCh)
	var all []string
	for k := range keyCh {
		all = append(all, k)
	}
	checkConsistent(t, s, all)
	if st := s.Stats(); st.Evictions == 0 {
		t.Fatalf("no eviction happened: %+v", st)
	}
}

// events lets goroutines that got ErrFull wait until another one has
// released something (finished or aborted a write, closed a reader)
// instead of spinning.
type events struct {
	mu   sync.Mutex
	cond sync.Cond
	n    uint64
}

func newEvents() *events {
	e := &events{}
	e.cond.L = &e.mu
	return e
}

// count is the number of events so far.
func (e *events) count() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n
}

// happened records an event and wakes the waiters.
func (e *events) happened() {
	e.mu.Lock()
	e.n++
	e.mu.Unlock()
	e.cond.Broadcast()
}

// waitPast waits until the count is no longer n.
func (e *events) waitPast(n uint64) {
	e.mu.Lock()
	for e.n == n {
		e.cond.Wait()
	}
	e.mu.Unlock()
}

// putRetry stores data under key, retrying while the quota is full of
// objects in use. A Create refused with ErrFull holds nothing, so it waits
// for another goroutine's event (which must come: whoever holds the quota
// is busy and will release it); a write refused half-way has released its
// reservation, so it reports the event and tries again at once. It returns
// how many times it was refused.
func putRetry(s *Store, ev *events, key string, data []byte, size int64) (refused int, err error) {
	for {
		seen := ev.count()
		w, err := s.Create(size)
		if errors.Is(err, ErrFull) {
			refused++
			ev.waitPast(seen)
			continue
		}
		if err != nil {
			return refused, err
		}
		err = writeCommit(w, key, data)
		ev.happened()
		if !errors.Is(err, ErrFull) {
			return refused, err
		}
		refused++
	}
}

// writeCommit writes data in pieces and commits it, or aborts.
func writeCommit(w *Writer, key string, data []byte) error {
	defer w.Close()
	for p := data; len(p) > 0; {
		n := min(len(p), 16<<10)
		if _, err := w.Write(p[:n]); err != nil {
			w.Abort()
			return err
		}
		p = p[n:]
	}
	_, err := w.Commit(key, Entry{}, digest.FromBytes(data))
	return err
}

// TestDeleteRemovesFileFirst: the bytes of a deleted blob leave the
// accounting only once its file has left the disk, or a writer could
// reserve room that is still taken. The test freezes the accounting (s.mu)
// and lets Delete run until it needs it: by then the file must be gone.
func TestDeleteRemovesFileFirst(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, Config{MaxBytes: 1 << 20})
	e := put(t, s, "k", randBytes(1, 64<<10))
	s.mu.Lock()
	locked := true
	defer func() {
		if locked {
			s.mu.Unlock()
		}
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		if err := s.Delete("k"); err != nil {
			t.Errorf("Delete: %v", err)
		}
	})
	waitBlocked(t, "(*Store).forgetLocked")
	onDisk := exists(blobFile(s.cfg.Dir, e.Digest))
	s.mu.Unlock()
	locked = false
	wg.Wait()
	if onDisk {
		t.Error("the store was about to stop counting a blob whose file is still on disk")
	}
	checkConsistent(t, s, []string{"k"})
}

// TestFlood has 32 goroutines store objects of random sizes, known and
// unknown, in a small quota, while a sampler checks the quota over and over:
// in the accounting and on disk. In "replace and delete" the workers also
// overwrite and delete their keys, so blobs also go by Commit and Delete,
// not only by eviction.
func TestFlood(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		keys    int // per worker; fewer keys than puts means replacements
		deletes bool
	}{
		{name: "distinct objects", keys: 10},
		{name: "replace and delete", keys: 3, deletes: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			flood(t, tc.keys, tc.deletes)
		})
	}
}

func flood(t *testing.T, keysPerWorker int, deletes bool) {
	const (
		max     = 1 << 20
		workers = 32
		puts    = 10 // per worker
	)
	s, _ := openStore(t, Config{MaxBytes: max, ReserveChunk: 32 << 10})
	ev := newEvents()

	done := make(chan struct{})
	var samples atomic.Int64
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			st := s.Stats()
			if st.Bytes+st.Reserved > max || st.Bytes < 0 || st.Reserved < 0 {
				t.Errorf("Stats() over quota or negative: %+v", st)
				return
			}
			if !checkDisk(t, s) {
				return
			}
			samples.Add(1)
			runtime.Gosched()
		}
	})

	var wg sync.WaitGroup
	var refused atomic.Int64
	keyCh := make(chan string, workers*keysPerWorker)
	for w := range workers {
		for i := range keysPerWorker {
			keyCh <- fmt.Sprintf("w%02d/%d", w, i)
		}
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 2))
			want := make(map[string][]byte) // what each key was last set to
			for i := range puts {
				k := fmt.Sprintf("w%02d/%d", w, rng.IntN(keysPerWorker))
				data := randBytes(uint64(w<<8|i), 1<<10+rng.IntN(128<<10))
				size := int64(len(data))
				if i%3 == 0 {
					size = -1
				}
				n, err := putRetry(s, ev, k, data, size)
				refused.Add(int64(n))
				if err != nil {
					t.Errorf("put %s (%d bytes): %v", k, len(data), err)
					return
				}
				want[k] = data
				if deletes && rng.IntN(3) == 0 {
					if err := s.Delete(k); err != nil {
						t.Errorf("Delete(%s): %v", k, err)
					}
					delete(want, k)
					ev.happened()
				}
				// Read one of ours back if it is still there.
				rk := fmt.Sprintf("w%02d/%d", w, rng.IntN(keysPerWorker))
				e, err := s.Get(rk)
				if err != nil {
					continue
				}
				if want[rk] == nil {
					t.Errorf("Get(%s) found a deleted key", rk)
					continue
				}
				if r, err := s.OpenBlob(e.Digest); err == nil {
					got, err := io.ReadAll(r)
					r.Close()
					ev.happened()
					if err != nil || !bytes.Equal(got, want[rk]) {
						t.Errorf("read %s during the flood: %d bytes, %v", rk, len(got), err)
					}
				}
			}
		})
	}
	wg.Wait()
	close(done)
	sampler.Wait()
	close(keyCh)
	var all []string
	for k := range keyCh {
		all = append(all, k)
	}
	st := s.Stats()
	t.Logf("%d samples, %d refusals (ErrFull), final %+v", samples.Load(), refused.Load(), st)
	if samples.Load() < 50 {
		t.Errorf("only %d samples during the flood", samples.Load())
	}
	if st.Evictions == 0 {
		t.Error("the flood evicted nothing")
	}
	checkConsistent(t, s, all)

	// And the same after a restart.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, _ := openStore(t, Config{Dir: s.cfg.Dir, MaxBytes: max})
	if st2 := s2.Stats(); st2.Blobs != st.Blobs || st2.Bytes != st.Bytes {
		t.Fatalf("after reopen Stats() = %+v, before %+v", st2, st)
	}
	checkConsistent(t, s2, all)
}

// diskUsage returns the size of every file under blobs/ and then tmp/, and
// the bytes the store accounts for (blobs, reservations, blobs being
// evicted). It holds s.mu throughout, so the accounting stands still while
// the files are walked; files still change, but in a correct store only in
// ways that keep disk <= accounted: writers create and extend temp files
// within reservations already made; a commit moves a file from tmp/ to
// blobs/ before its reservation becomes blob bytes (blobs/ is walked first,
// so a moved file is counted once or not at all); and bytes leave the
// accounting only after their file is gone. A file on disk the accounting
// has already let go of is room someone else may reserve: an overshoot.
func diskUsage(t testing.TB, s *Store) (disk, accounted int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, dir := range []string{s.blobDir, s.tmpDir} {
		err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // an aborted temp file
				}
				return err
			}
			if de.IsDir() {
				return nil
			}
			info, err := de.Info()
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			disk += info.Size()
			return nil
		})
		if err != nil {
			t.Errorf("walk %s: %v", dir, err)
		}
	}
	return disk, s.used + s.reserved + s.evicting
}

// checkDisk is one sample of diskUsage against the quota; false when it
// reported a problem.
func checkDisk(t testing.TB, s *Store) bool {
	// accounted itself may pass the quota for a moment: a reservation is
	// granted as its victims are picked, and their files are removed
	// before the reserving writer gets to write.
	disk, accounted := diskUsage(t, s)
	if max := s.cfg.MaxBytes; max > 0 && disk > max {
		t.Errorf("%d bytes under blobs/ and tmp/, %d accounted for, quota %d", disk, accounted, max)
		return false
	}
	if disk > accounted {
		t.Errorf("%d bytes under blobs/ and tmp/, only %d accounted for", disk, accounted)
		return false
	}
	return true
}

func key(i int) string { return fmt.Sprintf("obj%d", i) }

func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = key(i)
	}
	return out
}

// TestEvictionKeepsOtherCachedEntries: an eviction forgets the cached
// entries of the keys it dropped, and only those: on a full cache every
// miss evicts, and the hot keys must stay cheap to look up.
func TestEvictionKeepsOtherCachedEntries(t *testing.T) {
	t.Parallel()
	const unit = 100 << 10
	s, clk := openStore(t, Config{MaxBytes: 2 * unit})
	put(t, s, "cold", randBytes(1, unit))
	clk.Advance(time.Second)
	hot := randBytes(2, unit)
	put(t, s, "hot", hot)
	mustRead(t, s, "hot", hot) // cached now
	if _, ok := s.cachedEntry("hot"); !ok {
		t.Fatal("hot entry not cached after a read")
	}
	if _, err := s.Get("cold"); err != nil { // cached too, then evicted
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	put(t, s, "new", randBytes(3, unit))
	mustBeGone(t, s, "cold")
	if _, ok := s.cachedEntry("cold"); ok {
		t.Fatal("the evicted key's entry is still cached")
	}
	if _, ok := s.cachedEntry("hot"); !ok {
		t.Fatal("an eviction dropped the cached entry of a key it did not touch")
	}
	mustRead(t, s, "hot", hot)
}
