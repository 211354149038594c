package digest

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseRoundTrip(t *testing.T) {
	t.Parallel()
	d := FromBytes([]byte("hello"))
	const want = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	if d.String() != want {
		t.Fatalf("String() = %s, want %s", d, want)
	}
	got, err := Parse(want)
	if err != nil || got != d {
		t.Fatalf("Parse(%q) = %v, %v", want, got, err)
	}
	if e, ok := FromETag(d.ETag()); !ok || e != d {
		t.Fatalf("FromETag(%s) = %v, %v", d.ETag(), e, ok)
	}
	h := NewHash()
	h.Write([]byte("hello"))
	if FromHash(h) != d {
		t.Fatal("FromHash differs from FromBytes")
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	for name, s := range map[string]string{
		"empty":     "",
		"no prefix": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
		"short":     "sha256:2cf2",
		"not hex":   "sha256:zzf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
		"md5":       "md5:5d41402abc4b2a76b9719d911017c592",
	} {
		if _, err := Parse(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Parse(%q) err = %v, want ErrInvalid", name, s, err)
		}
	}
	for _, tag := range []string{`W/"sha256:00"`, `"abc"`, `sha256:x`, `"`} {
		if _, ok := FromETag(tag); ok {
			t.Errorf("FromETag(%q) accepted", tag)
		}
	}
}

func TestFromReader(t *testing.T) {
	t.Parallel()
	for _, size := range []int{0, 1, 32 << 10, 1<<20 + 7} {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(i * 31)
		}
		d, n, err := FromReader(bytes.NewReader(b))
		if err != nil || n != int64(size) || d != FromBytes(b) {
			t.Errorf("%d bytes: FromReader = %s, %d, %v; want %s, %d", size, d, n, err, FromBytes(b), size)
		}
	}
	broken := errors.New("disk on fire")
	r := io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(broken))
	if d, n, err := FromReader(r); !errors.Is(err, broken) || !d.IsZero() || n != 3 {
		t.Errorf("FromReader of a failing reader = %s, %d, %v; want the zero digest, 3, its error", d, n, err)
	}
}
