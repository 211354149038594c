package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/digest"
)

// TestResumeOneWriterPerName: while one writer has a partial file open, a
// second Resume of the name is refused; once it is closed, the next one
// continues from its bytes.
func TestResumeOneWriterPerName(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, Config{})
	data := randBytes(7, 64<<10)
	d := digest.FromBytes(data)
	w, err := s.Resume(d.Hex(), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:1000]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resume(d.Hex(), int64(len(data))); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Resume while the first is open: err = %v, want ErrBusy", err)
	}
	if _, err := s.Resume("other", 10); err != nil {
		t.Fatalf("Resume of another name: %v", err)
	}
	w.Close()
	w2, err := s.Resume(d.Hex(), int64(len(data)))
	if err != nil {
		t.Fatalf("Resume after Close: %v", err)
	}
	defer w2.Close()
	if w2.Written() != 1000 {
		t.Fatalf("resumed at %d, want 1000", w2.Written())
	}
	if _, err := w2.Write(data[1000:]); err != nil {
		t.Fatal(err)
	}
	if _, err := w2.Commit("k", Entry{}, d); err != nil {
		t.Fatal(err)
	}
	mustRead(t, s, "k", data)
}

// TestResumePinSurvivesARestart: the pin saved with a partial file is
// there after the store is reopened; Reset, Commit and Abort remove it,
// and a pin whose partial file is gone is cleared at the next start.
func TestResumePinSurvivesARestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir}, testLogger(t), clock.NewFake(epoch))
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(8, 64<<10)
	d := digest.FromBytes(data)
	w, err := s.Resume(d.Hex(), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := w.Pin(); ok {
		t.Fatal("a new partial file has a pin")
	}
	if err := w.SetPin(`"v1"`, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:1000]); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A leftover pin of a partial file that is gone.
	if err := os.WriteFile(filepath.Join(dir, "tmp", resumePrefix+"gone"+pinSuffix), []byte(`{"etag":"\"x\"","size":1}`), 0o640); err != nil {
		t.Fatal(err)
	}

	s = openStoreClock(t, Config{Dir: dir}, clock.NewFake(epoch))
	if _, err := os.Stat(filepath.Join(dir, "tmp", resumePrefix+"gone"+pinSuffix)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("orphan pin kept: %v", err)
	}
	w, err = s.Resume(d.Hex(), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if etag, size, ok := w.Pin(); !ok || etag != `"v1"` || size != int64(len(data)) || w.Written() != 1000 {
		t.Fatalf("after a restart: pin %q %d %v at %d; want \"v1\" %d at 1000", etag, size, ok, w.Written(), len(data))
	}
	if err := w.Reset(); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := w.Pin(); ok {
		t.Fatal("Reset kept the pin")
	}
	if err := w.SetPin(`"v2"`, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit("k", Entry{}, d); err != nil {
		t.Fatal(err)
	}
	w.Close()
	ents, err := os.ReadDir(filepath.Join(dir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left in tmp after Commit: %s", e.Name())
	}
	if err := (&Writer{}).SetPin(`"x"`, 1); err == nil {
		t.Fatal("SetPin of a writer that is not a resume accepted")
	}
}
