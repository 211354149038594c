package store

import (
	"errors"
	"testing"

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
