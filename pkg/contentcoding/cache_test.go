package contentcoding_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/contentcoding"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/store"
	"github.com/relayd/relayd/pkg/wire"
)

// newStore is a real blob store holding blobs, keyed by index.
func newStore(t *testing.T, blobs ...[]byte) (*store.Store, []digest.Digest) {
	t.Helper()
	s, err := store.Open(store.DefaultConfig(t.TempDir()), zerolog.Nop(), clock.NewFake(time.Unix(1e9, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	var ds []digest.Digest
	for i, b := range blobs {
		w, err := s.Create(int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
		e, err := w.Commit("/blob"+string(rune('a'+i)), store.Entry{}, digest.Digest{})
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, e.Digest)
	}
	return s, ds
}

func readForm(t *testing.T, f *contentcoding.Form, dict []byte, length int) []byte {
	t.Helper()
	defer f.File.Close()
	rc, err := contentcoding.Decode(f.File, f.Coding, dict, int64(length))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("decode %s form: %v", f.Coding, err)
	}
	return b
}

func TestCacheFormsBuiltOnceAndChosen(t *testing.T) {
	old, new := sourceTars(t)
	zip := archive(t)
	s, ds := newStore(t, old, new, zip)
	dir := filepath.Join(t.TempDir(), "derived")
	c, err := contentcoding.Open(contentcoding.DefaultConfig(dir), s, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	// Eight requests at once for the delta: one build, all served dcz.
	a := contentcoding.Accept{Zstd: true, Dcz: true, Dict: ds[0]}
	var wg sync.WaitGroup
	forms := make([]*contentcoding.Form, 8)
	for i := range forms {
		wg.Go(func() {
			f, err := c.Get(ds[1], a)
			if err != nil {
				t.Error(err)
			}
			forms[i] = f
		})
	}
	wg.Wait()
	served := 0
	for _, f := range forms {
		if f == nil {
			continue // a build slot was busy: identity, still correct
		}
		served++
		if f.Coding != wire.CodingDcz || f.Dict != ds[0] {
			t.Fatalf("form %s against %s, want dcz against the old blob", f.Coding, f.Dict)
		}
		if got := readForm(t, f, old, len(new)); !bytes.Equal(got, new) {
			t.Fatal("dcz form decodes to other bytes")
		}
	}
	if st := c.Stats(); st.Built != 1 || served == 0 {
		t.Fatalf("built %d forms for 8 concurrent requests (served %d), want 1", st.Built, served)
	}
	// zstd only; then an archive: identity, decided once.
	f, err := c.Get(ds[1], contentcoding.Accept{Zstd: true})
	if err != nil || f == nil || f.Coding != wire.CodingZstd {
		t.Fatalf("zstd form: %+v, %v", f, err)
	}
	if got := readForm(t, f, nil, len(new)); !bytes.Equal(got, new) {
		t.Fatal("zstd form decodes to other bytes")
	}
	for range 2 {
		if f, err := c.Get(ds[2], contentcoding.Accept{Zstd: true}); f != nil || err != nil {
			t.Fatalf("archive: form %+v, %v; want identity", f, err)
		}
	}
	if st := c.Stats(); st.Built != 2 || st.Skipped != 1 {
		t.Fatalf("stats %+v, want 2 built, 1 skipped", st)
	}
	// A delta not worth it (the archive against the tar) falls back to
	// what zstd decided: identity.
	for range 2 {
		if f, err := c.Get(ds[2], contentcoding.Accept{Zstd: true, Dcz: true, Dict: ds[0]}); f != nil || err != nil {
			t.Fatalf("archive against an unrelated dictionary: %+v, %v; want identity", f, err)
		}
	}
	if st := c.Stats(); st.Built != 2 || st.Skipped != 2 {
		t.Fatalf("stats %+v, want 2 built, 2 skipped", st)
	}
	// Nobody asks zstd: identity.
	if f, err := c.Get(ds[1], contentcoding.Accept{}); f != nil || err != nil {
		t.Fatalf("no coding accepted: %+v, %v", f, err)
	}
}

func TestCacheCrashLeftoversAndBudget(t *testing.T) {
	old, new := sourceTars(t)
	s, ds := newStore(t, old, new)
	dir := filepath.Join(t.TempDir(), "derived")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(dir, "tmp-123")
	if err := os.WriteFile(leftover, []byte("half a form"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := contentcoding.DefaultConfig(dir)
	c, err := contentcoding.Open(cfg, s, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatalf("a crash's temp file survived Open: %v", err)
	}
	for _, d := range ds {
		f, err := c.Get(d, contentcoding.Accept{Zstd: true})
		if err != nil || f == nil {
			t.Fatalf("zstd of %s: %v", d, err)
		}
		f.File.Close()
	}
	st := c.Stats()
	if st.Files != 2 {
		t.Fatalf("stats %+v, want 2 forms", st)
	}
	// Reopened with a budget for one form: the older goes.
	cfg.MaxBytes = st.Bytes - 1
	c, err = contentcoding.Open(cfg, s, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Files != 1 || st.Bytes > cfg.MaxBytes {
		t.Fatalf("after reopening over budget: %+v (budget %d)", st, cfg.MaxBytes)
	}
	names, _ := os.ReadDir(dir)
	if len(names) != 1 {
		t.Fatalf("%d files in the derived directory, want 1", len(names))
	}
}
