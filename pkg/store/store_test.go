package store

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/digest"
)

// epoch is where every fake clock in these tests starts.
var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// testLogger logs through t, at info so that per-eviction debug lines do not
// flood the output of the quota tests.
func testLogger(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
}

// openStore opens a store on cfg (a fresh t.TempDir() when cfg.Dir is
// empty) with a fake clock, and closes it when the test ends.
func openStore(t testing.TB, cfg Config) (*Store, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(epoch)
	return openStoreClock(t, cfg, clk), clk
}

func openStoreClock(t testing.TB, cfg Config, clk clock.Clock) *Store {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	s, err := Open(cfg, testLogger(t), clk)
	if err != nil {
		t.Fatalf("Open(%s): %v", cfg.Dir, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// randBytes returns n pseudo-random bytes, the same for the same seed.
func randBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24), byte(seed >> 32)})
	_, _ = r.Read(b)
	return b
}

// put stores data under key with a known size and the right digest.
func put(t testing.TB, s *Store, key string, data []byte) Entry {
	t.Helper()
	e, err := tryPut(s, key, data, int64(len(data)))
	if err != nil {
		t.Fatalf("put %s (%d bytes): %v", key, len(data), err)
	}
	return e
}

// tryPut is put for goroutines: it reports instead of failing the test.
// size is the size given to Create (-1 for unknown).
func tryPut(s *Store, key string, data []byte, size int64) (Entry, error) {
	w, err := s.Create(size)
	if err != nil {
		return Entry{}, err
	}
	defer w.Close()
	// Write in pieces, as a fill from the network does.
	for p := data; len(p) > 0; {
		n := min(len(p), 16<<10)
		if _, err := w.Write(p[:n]); err != nil {
			w.Abort()
			return Entry{}, err
		}
		p = p[n:]
	}
	return w.Commit(key, Entry{}, digest.FromBytes(data))
}

// readBlob returns the bytes of blob d.
func readBlob(t testing.TB, s *Store, d digest.Digest) []byte {
	t.Helper()
	r, err := s.OpenBlob(d)
	if err != nil {
		t.Fatalf("OpenBlob(%s): %v", d, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read blob %s: %v", d, err)
	}
	if int64(len(b)) != r.Size {
		t.Fatalf("blob %s: read %d bytes, Reader.Size %d", d, len(b), r.Size)
	}
	return b
}

// mustRead checks that key resolves to exactly want.
func mustRead(t testing.TB, s *Store, key string, want []byte) Entry {
	t.Helper()
	e, err := s.Get(key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	if e.Digest != digest.FromBytes(want) || e.Size != int64(len(want)) {
		t.Fatalf("Get(%s) = %s/%d, want %s/%d", key, e.Digest, e.Size, digest.FromBytes(want), len(want))
	}
	if got := readBlob(t, s, e.Digest); !bytes.Equal(got, want) {
		t.Fatalf("%s: blob bytes differ from what was written (%d vs %d bytes)", key, len(got), len(want))
	}
	return e
}

// mustBeGone checks that key has no entry.
func mustBeGone(t testing.TB, s *Store, key string) {
	t.Helper()
	if e, err := s.Get(key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(%s) = %+v, %v; want ErrNotFound", key, e, err)
	}
}

// files lists the regular files under dir (relative path → size).
func files(t testing.TB, dir string) map[string]int64 {
	t.Helper()
	out := make(map[string]int64)
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() {
			return nil
		}
		info, err := de.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = info.Size()
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return out
}

func blobFile(dir string, d digest.Digest) string {
	return filepath.Join(dir, "blobs", d.Hex()[:2], d.Hex())
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// checkConsistent checks that memory, index and disk agree once nothing is
// in flight: every blob file is a known blob with the right bytes, the
// sizes add up, no temp file or reservation is left, and every key in keys
// either is gone or reads back as a blob that is there.
func checkConsistent(t testing.TB, s *Store, keys []string) {
	t.Helper()
	st := s.Stats()
	if st.Reserved != 0 {
		t.Errorf("Stats().Reserved = %d with no writer open, want 0", st.Reserved)
	}
	if tmp := files(t, s.tmpDir); len(tmp) != 0 {
		t.Errorf("temp files left: %v", tmp)
	}
	var n int
	var total int64
	for rel, size := range files(t, s.blobDir) {
		d, err := digest.ParseHex(filepath.Base(rel))
		if err != nil {
			t.Errorf("unexpected file blobs/%s", rel)
			continue
		}
		n++
		total += size
		if !s.Has(d) {
			t.Errorf("blob file %s is not a known blob", rel)
		}
		b, err := os.ReadFile(filepath.Join(s.blobDir, rel))
		if err != nil || digest.FromBytes(b) != d {
			t.Errorf("blob file %s: content does not match its name (err %v)", rel, err)
		}
	}
	if n != st.Blobs || total != st.Bytes {
		t.Errorf("on disk %d blobs / %d bytes, Stats() says %d / %d", n, total, st.Blobs, st.Bytes)
	}
	if st.MaxBytes > 0 && st.Bytes > st.MaxBytes {
		t.Errorf("Stats().Bytes = %d > MaxBytes %d", st.Bytes, st.MaxBytes)
	}
	for _, k := range keys {
		e, err := s.Get(k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			t.Errorf("Get(%s): %v", k, err)
			continue
		}
		if !s.Has(e.Digest) {
			t.Errorf("key %s points to blob %s the store does not have", k, e.Digest)
			continue
		}
		r, err := s.OpenBlob(e.Digest)
		if err != nil {
			t.Errorf("key %s: OpenBlob: %v", k, err)
			continue
		}
		h := digest.NewHash()
		_, err = io.Copy(h, r)
		r.Close()
		if err != nil || digest.FromHash(h) != e.Digest {
			t.Errorf("key %s: blob does not read back as %s (err %v)", k, e.Digest, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	hdr := map[string]string{"Content-Type": "application/vnd.debian.binary-package", "Etag": `"abc"`, "Last-Modified": "Mon, 02 Jan 2006 15:04:05 GMT"}
	for _, tc := range []struct {
		name string
		size int  // bytes written
		decl bool // declare the size to Create (else -1)
		hdr  map[string]string
		zero bool // commit without an expected digest
	}{
		{name: "empty", size: 0, decl: true},
		{name: "one byte", size: 1, decl: true},
		{name: "small with headers", size: 4 << 10, decl: true, hdr: hdr},
		{name: "large odd size", size: 1<<20 + 3, decl: true, hdr: hdr},
		{name: "unknown size", size: 300<<10 + 7, hdr: hdr},
		{name: "unknown size empty", size: 0},
		{name: "no expected digest", size: 10 << 10, decl: true, zero: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, clk := openStore(t, Config{ReserveChunk: 64 << 10})
			data := randBytes(uint64(tc.size), tc.size)
			size := int64(-1)
			if tc.decl {
				size = int64(len(data))
			}
			w, err := s.Create(size)
			if err != nil {
				t.Fatalf("Create(%d): %v", size, err)
			}
			defer w.Close()
			for p := data; len(p) > 0; {
				n := min(len(p), 7000) // odd pieces
				if _, err := w.Write(p[:n]); err != nil {
					t.Fatalf("Write: %v", err)
				}
				p = p[n:]
			}
			if w.Written() != int64(len(data)) {
				t.Fatalf("Written() = %d, want %d", w.Written(), len(data))
			}
			if w.Digest() != digest.FromBytes(data) {
				t.Fatalf("Writer.Digest() = %s, want %s", w.Digest(), digest.FromBytes(data))
			}
			want := Entry{Requested: clk.Now().Add(-time.Second), Stored: clk.Now(), Header: tc.hdr}
			expect := digest.FromBytes(data)
			if tc.zero {
				expect = digest.Digest{}
			}
			got, err := w.Commit("a/b/obj", want, expect)
			if err != nil {
				t.Fatalf("Commit: %v", err)
			}
			want.Digest, want.Size = digest.FromBytes(data), int64(len(data))
			if !entriesEqual(got, want) {
				t.Fatalf("Commit returned %+v, want %+v", got, want)
			}
			e, err := s.Get("a/b/obj")
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if !entriesEqual(e, want) {
				t.Fatalf("Get = %+v, want %+v", e, want)
			}
			if b := readBlob(t, s, e.Digest); !bytes.Equal(b, data) {
				t.Fatalf("blob bytes differ (%d vs %d bytes)", len(b), len(data))
			}
			if !s.Has(e.Digest) {
				t.Fatal("Has(digest) = false after commit")
			}
			if st := s.Stats(); st.Blobs != 1 || st.Bytes != int64(len(data)) || st.Reserved != 0 {
				t.Fatalf("Stats() = %+v, want 1 blob of %d bytes, nothing reserved", st, len(data))
			}
			if n, ok := files(t, s.blobDir)[filepath.Join(e.Digest.Hex()[:2], e.Digest.Hex())]; !ok || n != int64(len(data)) {
				t.Fatalf("blob file missing or wrong size (%d, %v)", n, ok)
			}
			checkConsistent(t, s, []string{"a/b/obj"})
		})
	}
}

// entriesEqual compares entries, times by instant (JSON drops the
// monotonic reading and the location).
func entriesEqual(a, b Entry) bool {
	if len(a.Header) == 0 && len(b.Header) == 0 {
		a.Header, b.Header = nil, nil
	}
	return a.Digest == b.Digest && a.Size == b.Size && a.Requested.Equal(b.Requested) &&
		a.Stored.Equal(b.Stored) && reflect.DeepEqual(a.Header, b.Header)
}

func TestGetMissing(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, Config{})
	mustBeGone(t, s, "nope")
	if _, err := s.OpenBlob(digest.FromBytes([]byte("nope"))); !errors.Is(err, ErrNotFound) {
		t.Fatalf("OpenBlob(unknown) err = %v, want ErrNotFound", err)
	}
	if err := s.Update("nope", func(*Entry) {}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Update(unknown) err = %v, want ErrNotFound", err)
	}
	if err := s.Delete("nope"); err != nil {
		t.Fatalf("Delete(unknown) = %v, want nil", err)
	}
}

func TestDedup(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, Config{})
	data := randBytes(1, 100<<10)
	d := digest.FromBytes(data)
	put(t, s, "debian/a.deb", data)
	put(t, s, "mirror/a.deb", data)
	if st := s.Stats(); st.Blobs != 1 || st.Bytes != int64(len(data)) {
		t.Fatalf("two keys, same bytes: Stats() = %+v, want 1 blob of %d bytes", st, len(data))
	}
	if fs := files(t, s.blobDir); len(fs) != 1 {
		t.Fatalf("blob files = %v, want one", fs)
	}
	checkConsistent(t, s, []string{"debian/a.deb", "mirror/a.deb"})

	if err := s.Delete("debian/a.deb"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	mustBeGone(t, s, "debian/a.deb")
	mustRead(t, s, "mirror/a.deb", data)
	if !exists(blobFile(s.cfg.Dir, d)) {
		t.Fatal("blob file removed while another key still uses it")
	}

	if err := s.Delete("mirror/a.deb"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	mustBeGone(t, s, "mirror/a.deb")
	if exists(blobFile(s.cfg.Dir, d)) {
		t.Fatal("blob file still on disk after its last key was deleted")
	}
	if s.Has(d) {
		t.Fatal("Has = true after the last key was deleted")
	}
	if st := s.Stats(); st.Blobs != 0 || st.Bytes != 0 {
		t.Fatalf("Stats() = %+v after deleting everything", st)
	}
	checkConsistent(t, s, nil)
}

func TestCommitRejected(t *testing.T) {
	t.Parallel()
	data := randBytes(2, 64<<10)
	for _, tc := range []struct {
		name    string
		size    int64  // given to Create
		write   []byte // bytes written
		expect  digest.Digest
		wantErr error // nil: any error
	}{
		{name: "wrong digest", size: int64(len(data)), write: data, expect: digest.FromBytes([]byte("other")), wantErr: ErrDigestMismatch},
		{name: "wrong digest unknown size", size: -1, write: data, expect: digest.FromBytes([]byte("other")), wantErr: ErrDigestMismatch},
		{name: "short write", size: int64(len(data)), write: data[:len(data)-1], expect: digest.FromBytes(data)},
		{name: "nothing written", size: int64(len(data)), expect: digest.FromBytes(data)},
		{name: "short write no digest", size: int64(len(data)), write: data[:100]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _ := openStore(t, Config{MaxBytes: 1 << 20, ReserveChunk: 128 << 10})
			put(t, s, "other", []byte("previous bytes"))
			put(t, s, "k", []byte("previous bytes of k"))
			before := s.Stats()
			w, err := s.Create(tc.size)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			defer w.Close()
			if len(tc.write) > 0 {
				if _, err := w.Write(tc.write); err != nil {
					t.Fatalf("Write: %v", err)
				}
			}
			_, err = w.Commit("k", Entry{}, tc.expect)
			if err == nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Commit err = %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), "k") {
				t.Errorf("error %q does not name the key", err)
			}
			// Nothing stored: the previous entry of k is untouched, no
			// temp file, no reservation, no new blob.
			mustRead(t, s, "k", []byte("previous bytes of k"))
			mustRead(t, s, "other", []byte("previous bytes"))
			if got := s.Stats(); got != before {
				t.Fatalf("Stats() = %+v after a rejected commit, want %+v", got, before)
			}
			if tmp := files(t, s.tmpDir); len(tmp) != 0 {
				t.Fatalf("temp files left after a rejected commit: %v", tmp)
			}
			if s.Has(digest.FromBytes(tc.write)) && len(tc.write) > 0 {
				t.Fatal("rejected bytes became a blob")
			}
			// The writer is finished.
			if _, err := w.Commit("k", Entry{}, digest.Digest{}); err == nil {
				t.Fatal("second Commit after a rejected one succeeded")
			}
			checkConsistent(t, s, []string{"k", "other"})
		})
	}
}

func TestWriterMisuse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  Config // MaxBytes 1 MiB when zero
		run  func(t *testing.T, s *Store)
	}{
		{"write beyond declared size", Config{}, func(t *testing.T, s *Store) {
			w, err := s.Create(4)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if _, err := w.Write([]byte("12345")); err == nil {
				t.Fatal("Write of 5 bytes into a 4-byte object succeeded")
			}
			if _, err := w.Write([]byte("1234")); err != nil {
				t.Fatalf("Write within size after a refused one: %v", err)
			}
			if _, err := w.Commit("k", Entry{}, digest.FromBytes([]byte("1234"))); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			mustRead(t, s, "k", []byte("1234"))
		}},
		{"commit twice", Config{}, func(t *testing.T, s *Store) {
			w, err := s.Create(-1)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			w.Write([]byte("abc"))
			if _, err := w.Commit("k", Entry{}, digest.Digest{}); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Commit("k2", Entry{}, digest.Digest{}); err == nil {
				t.Fatal("second Commit succeeded")
			}
			mustBeGone(t, s, "k2")
		}},
		{"write after commit", Config{MaxBytes: -1 /* no quota */}, func(t *testing.T, s *Store) {
			// A committed blob is shared by every key with its bytes;
			// a stray Write must not append to it.
			w, err := s.Create(-1)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			w.Write([]byte("abc"))
			if _, err := w.Commit("k", Entry{}, digest.Digest{}); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte("def")); err == nil {
				t.Error("Write after Commit succeeded")
			}
			mustRead(t, s, "k", []byte("abc"))
			checkConsistent(t, s, []string{"k"})
		}},
		{"commit after abort", Config{}, func(t *testing.T, s *Store) {
			w, err := s.Create(3)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			w.Write([]byte("abc"))
			w.Abort()
			w.Abort() // idempotent
			if _, err := w.Commit("k", Entry{}, digest.Digest{}); err == nil {
				t.Fatal("Commit after Abort succeeded")
			}
			mustBeGone(t, s, "k")
			checkConsistent(t, s, nil)
		}},
		{"abort after commit keeps the object", Config{}, func(t *testing.T, s *Store) {
			w, err := s.Create(3)
			if err != nil {
				t.Fatal(err)
			}
			w.Write([]byte("abc"))
			if _, err := w.Commit("k", Entry{}, digest.Digest{}); err != nil {
				t.Fatal(err)
			}
			w.Abort()
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			mustRead(t, s, "k", []byte("abc"))
			checkConsistent(t, s, []string{"k"})
		}},
		{"abandoned writer releases on abort", Config{}, func(t *testing.T, s *Store) {
			w, err := s.Create(1000)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Stats().Reserved; got != 1000 {
				t.Fatalf("Reserved = %d during a 1000-byte write, want 1000", got)
			}
			w.Abort()
			w.Close()
			checkConsistent(t, s, nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg
			if cfg.MaxBytes == 0 {
				cfg.MaxBytes = 1 << 20
			}
			s, _ := openStore(t, cfg)
			tc.run(t, s)
		})
	}
}

func TestReplace(t *testing.T) {
	t.Parallel()
	a, b := randBytes(3, 10<<10), randBytes(4, 20<<10)
	for _, tc := range []struct {
		name      string
		shareOld  bool // another key uses the old bytes
		sameBytes bool // replace with identical bytes
	}{
		{name: "old blob unused"},
		{name: "old blob shared", shareOld: true},
		{name: "same bytes", sameBytes: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _ := openStore(t, Config{})
			put(t, s, "k", a)
			if tc.shareOld {
				put(t, s, "other", a)
			}
			next := b
			if tc.sameBytes {
				next = a
			}
			put(t, s, "k", next)
			mustRead(t, s, "k", next)
			oldKept := tc.shareOld || tc.sameBytes
			if got := s.Has(digest.FromBytes(a)); got != oldKept {
				t.Fatalf("Has(old) = %v, want %v", got, oldKept)
			}
			if got := exists(blobFile(s.cfg.Dir, digest.FromBytes(a))); got != oldKept {
				t.Fatalf("old blob file exists = %v, want %v", got, oldKept)
			}
			if tc.shareOld {
				mustRead(t, s, "other", a)
			}
			checkConsistent(t, s, []string{"k", "other"})
		})
	}
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	s, clk := openStore(t, Config{})
	data := []byte("package index")
	orig := put(t, s, "dists/stable/InRelease", data)
	clk.Advance(time.Hour)
	err := s.Update("dists/stable/InRelease", func(e *Entry) {
		e.Stored = clk.Now()
		e.Header = map[string]string{"Etag": `"v2"`, "Cache-Control": "max-age=60"}
		// Update must never let the blob change under a key.
		e.Digest = digest.FromBytes([]byte("something else"))
		e.Size = 1
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	e := mustRead(t, s, "dists/stable/InRelease", data)
	if e.Digest != orig.Digest || e.Size != orig.Size {
		t.Fatalf("Update changed Digest/Size to %s/%d", e.Digest, e.Size)
	}
	if !e.Stored.Equal(clk.Now()) || e.Header["Etag"] != `"v2"` || e.Header["Cache-Control"] != "max-age=60" {
		t.Fatalf("Update not applied: %+v", e)
	}
	checkConsistent(t, s, []string{"dists/stable/InRelease"})
}

func TestDeleteWhileReading(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, Config{})
	data := randBytes(5, 200<<10)
	e := put(t, s, "k", data)
	r, err := s.OpenBlob(e.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := s.Delete("k"); err != nil {
		t.Fatal(err)
	}
	mustBeGone(t, s, "k")
	if exists(blobFile(s.cfg.Dir, e.Digest)) {
		t.Fatal("blob file still there after delete")
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("open reader after delete: %d bytes, %v; want the original bytes", len(got), err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Reader.Close: %v", err)
	}
	checkConsistent(t, s, nil)
}

func TestClosed(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, Config{})
	put(t, s, "k", []byte("x"))
	w, err := s.Create(3)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write([]byte("abc"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := w.Commit("late", Entry{}, digest.Digest{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Commit after Close err = %v, want ErrClosed", err)
	}
	if _, err := s.Create(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Create after Close err = %v, want ErrClosed", err)
	}
	if tmp := files(t, s.tmpDir); len(tmp) != 0 {
		t.Fatalf("temp file left by a commit refused after Close: %v", tmp)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestOpenNeedsDir(t *testing.T) {
	t.Parallel()
	if _, err := Open(Config{}, zerolog.Nop(), clock.NewFake(epoch)); err == nil {
		t.Fatal("Open without Dir succeeded")
	}
}

func TestReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, _ := openStore(t, Config{Dir: dir})
	objs := map[string][]byte{
		"a":       randBytes(10, 1),
		"b/c":     randBytes(11, 5000),
		"b/d":     randBytes(11, 5000), // same bytes as b/c
		"e f g":   randBytes(12, 300<<10),
		"unicode": []byte("çå"),
	}
	hdr := map[string]string{"Content-Type": "text/plain"}
	for k, v := range objs {
		w, err := s.Create(int64(len(v)))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(v)
		if _, err := w.Commit(k, Entry{Stored: epoch, Header: hdr}, digest.FromBytes(v)); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	before := s.Stats()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2, _ := openStore(t, Config{Dir: dir})
	if after := s2.Stats(); after.Blobs != before.Blobs || after.Bytes != before.Bytes {
		t.Fatalf("after reopen Stats() = %+v, before %+v", after, before)
	}
	for k, v := range objs {
		e := mustRead(t, s2, k, v)
		if !e.Stored.Equal(epoch) || e.Header["Content-Type"] != "text/plain" {
			t.Fatalf("%s: entry after reopen = %+v", k, e)
		}
	}
	keys := make([]string, 0, len(objs))
	for k := range objs {
		keys = append(keys, k)
	}
	checkConsistent(t, s2, keys)
}

// TestReopenRestoresLRU checks that the eviction order survives a restart:
// it comes from the access times flushed at Close, not from commit order.
func TestReopenRestoresLRU(t *testing.T) {
	t.Parallel()
	const unit = 64 << 10
	dir := t.TempDir()
	cfg := Config{Dir: dir, MaxBytes: 4 * unit}
	s, clk := openStore(t, cfg)
	data := map[string][]byte{}
	for i, k := range []string{"a", "b", "c", "d"} {
		data[k] = randBytes(uint64(20+i), unit)
		put(t, s, k, data[k])
		clk.Advance(time.Minute)
	}
	// Read a, then b: from oldest to newest use the order is c d a b.
	for _, k := range []string{"a", "b"} {
		readBlob(t, s, digest.FromBytes(data[k]))
		clk.Advance(time.Minute)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := openStoreClock(t, cfg, clk)
	for i, wantGone := range []string{"c", "d", "a", "b"} {
		clk.Advance(time.Minute)
		put(t, s2, "new"+string(rune('0'+i)), randBytes(uint64(30+i), unit))
		mustBeGone(t, s2, wantGone)
		if st := s2.Stats(); st.Evictions != int64(i+1) || st.Bytes > cfg.MaxBytes {
			t.Fatalf("after %d evictions Stats() = %+v", i+1, st)
		}
	}
}

func TestReconcile(t *testing.T) {
	t.Parallel()
	keep := randBytes(40, 3000)
	other := randBytes(41, 2000)
	for _, tc := range []struct {
		name string
		// crash damages dir (store closed) and returns the keys that
		// must be gone after Open.
		crash func(t *testing.T, dir string) (gone []string)
		// stray are paths under dir that Open must remove.
		stray []string
	}{
		{
			name: "blob without record",
			crash: func(t *testing.T, dir string) []string {
				d := digest.FromBytes([]byte("orphan"))
				p := blobFile(dir, d)
				mustWriteFile(t, p, []byte("orphan"))
				return nil
			},
			stray: []string{blobFile("", digest.FromBytes([]byte("orphan")))},
		},
		{
			name: "record without blob",
			crash: func(t *testing.T, dir string) []string {
				if err := os.Remove(blobFile(dir, digest.FromBytes(other))); err != nil {
					t.Fatal(err)
				}
				return []string{"other", "other-too"}
			},
		},
		{
			name: "blob with wrong size",
			crash: func(t *testing.T, dir string) []string {
				if err := os.Truncate(blobFile(dir, digest.FromBytes(other)), 10); err != nil {
					t.Fatal(err)
				}
				return []string{"other", "other-too"}
			},
			stray: []string{blobFile("", digest.FromBytes(other))},
		},
		{
			name: "leftover temp files",
			crash: func(t *testing.T, dir string) []string {
				mustWriteFile(t, filepath.Join(dir, "tmp", "fill-123"), []byte("half a download"))
				mustWriteFile(t, filepath.Join(dir, "tmp", "sub", "fill-9"), []byte("x"))
				return nil
			},
			stray: []string{"tmp/fill-123", "tmp/sub/fill-9"},
		},
		{
			name: "unknown file in blob directory",
			crash: func(t *testing.T, dir string) []string {
				mustWriteFile(t, filepath.Join(dir, "blobs", "zz", "not-a-digest"), []byte("?"))
				return nil
			},
			stray: []string{"blobs/zz/not-a-digest"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s, _ := openStore(t, Config{Dir: dir})
			put(t, s, "keep", keep)
			put(t, s, "other", other)
			put(t, s, "other-too", other)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			gone := tc.crash(t, dir)

			s2, _ := openStore(t, Config{Dir: dir})
			mustRead(t, s2, "keep", keep)
			for _, k := range gone {
				mustBeGone(t, s2, k)
			}
			if len(gone) > 0 && s2.Has(digest.FromBytes(other)) {
				t.Fatal("Has = true for a dropped blob")
			}
			if len(gone) == 0 {
				mustRead(t, s2, "other", other)
			}
			for _, p := range tc.stray {
				if exists(filepath.Join(dir, p)) {
					t.Errorf("%s survived Open", p)
				}
			}
			checkConsistent(t, s2, []string{"keep", "other", "other-too"})
		})
	}
}

// TestReconcileUncommittedWriter: a store closed (or killed) while a writer
// is in progress leaves a temp file; the next Open removes it and counts
// no reservation for it.
func TestReconcileUncommittedWriter(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, _ := openStore(t, Config{Dir: dir, MaxBytes: 1 << 20})
	w, err := s.Create(100 << 10)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(randBytes(50, 50<<10))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if len(files(t, filepath.Join(dir, "tmp"))) != 1 {
		t.Fatal("expected the writer's temp file before reopening")
	}
	s2, _ := openStore(t, Config{Dir: dir, MaxBytes: 1 << 20})
	checkConsistent(t, s2, nil)
	if st := s2.Stats(); st.Reserved != 0 || st.Bytes != 0 {
		t.Fatalf("Stats() after reopen = %+v", st)
	}
	w.Close()
}

func mustWriteFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
}
