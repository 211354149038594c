package wire

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestDecodeRelays(t *testing.T) {
	t.Parallel()
	doc, err := DecodeRelays(strings.NewReader(`{"group":"g","relays":[{"name":"r1","url":"http://r1:20080","mode":"proxy","generation":4}]}`))
	if err != nil || doc.Group != "g" || len(doc.Relays) != 1 || doc.Relays[0] != (Relay{Name: "r1", URL: "http://r1:20080", Mode: "proxy", Generation: 4}) {
		t.Fatalf("DecodeRelays = %+v, %v", doc, err)
	}
	// Exactly the cap is read; one byte more is refused, however the
	// document would parse.
	pad := func(n int) string { return `{"group":"g"` + strings.Repeat(" ", n-len(`{"group":"g"}`)) + `}` }
	if _, err := DecodeRelays(strings.NewReader(pad(MaxRelaysSize))); err != nil {
		t.Errorf("a document of exactly %d bytes: %v", MaxRelaysSize, err)
	}
	for _, tc := range []struct {
		name string
		r    io.Reader
	}{
		{"too large", strings.NewReader(pad(MaxRelaysSize + 1))},
		{"endless", endless{}},
		{"not JSON", strings.NewReader("<html>")},
		{"read error", io.MultiReader(strings.NewReader(`{"gr`), errReader{})},
	} {
		if doc, err := DecodeRelays(tc.r); err == nil || doc.Group != "" {
			t.Errorf("%s: DecodeRelays = %+v, %v; want an error and no document", tc.name, doc, err)
		}
	}
}

// endless is a body that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestParseGeneration(t *testing.T) {
	t.Parallel()
	if g, err := ParseGeneration([]byte(`{"generation":7,"digest":"ab"}`)); err != nil || g.Generation != 7 || g.Digest != "ab" {
		t.Fatalf("ParseGeneration = %+v, %v", g, err)
	}
	for _, in := range []string{`{"generation":0}`, `{}`, `not json`, `{"generation":-1}`} {
		if _, err := ParseGeneration([]byte(in)); err == nil {
			t.Errorf("ParseGeneration(%s) accepted", in)
		}
	}
}
