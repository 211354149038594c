package object

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFileBodyRanges(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("0123456789"), 50000) // 500,000 bytes: above smallBody
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	shared, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	for _, tc := range []struct {
		name     string
		off, n   int64
		sendfile bool
	}{
		{"whole copy", 0, -1, false},
		{"whole sendfile", 0, -1, true},
		{"middle copy", 1234, 300000, false},
		{"middle sendfile", 1234, 300000, true},
		{"small tail", int64(len(data)) - 10, 10, true},
		{"past the end clamps", 10, 1 << 30, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &FileBody{R: shared, Path: p, N: int64(len(data)), Sendfile: tc.sendfile}
			var out bytes.Buffer
			n, err := b.CopyTo(context.Background(), &out, tc.off, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			end := int64(len(data))
			if tc.n >= 0 && tc.off+tc.n < end {
				end = tc.off + tc.n
			}
			if n != end-tc.off || !bytes.Equal(out.Bytes(), data[tc.off:end]) {
				t.Fatalf("copied %d bytes, want %d (content differs: %v)", n, end-tc.off, !bytes.Equal(out.Bytes(), data[tc.off:end]))
			}
		})
	}
}

func TestCopyAtShortSource(t *testing.T) {
	t.Parallel()
	_, err := CopyAt(context.Background(), &bytes.Buffer{}, bytes.NewReader([]byte("abc")), 0, 10)
	if !errors.Is(err, ErrShortRead) {
		t.Fatalf("err = %v, want ErrShortRead", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := CopyAt(ctx, &bytes.Buffer{}, bytes.NewReader([]byte("abc")), 0, 3); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
}

func TestBytesBody(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if _, err := BytesBody("hello world").CopyTo(context.Background(), &out, 6, 3); err != nil || out.String() != "wor" {
		t.Fatalf("%q %v", out.String(), err)
	}
}
