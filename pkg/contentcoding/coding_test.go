package contentcoding_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/relayd/relayd/pkg/contentcoding"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/wire"
)

func encodeDelta(tb testing.TB, old, new []byte) []byte {
	var buf bytes.Buffer
	if err := contentcoding.EncodeDelta(&buf, bytes.NewReader(new), int64(len(new)), old); err != nil {
		tb.Fatalf("EncodeDelta: %v", err)
	}
	return buf.Bytes()
}

func encodeZstd(tb testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	if err := contentcoding.EncodeZstd(&buf, bytes.NewReader(b), int64(len(b))); err != nil {
		tb.Fatalf("EncodeZstd: %v", err)
	}
	return buf.Bytes()
}

// decode decodes enc and returns the bytes or the error.
func decode(enc []byte, coding string, dict []byte, length int64) ([]byte, error) {
	rc, err := contentcoding.Decode(bytes.NewReader(enc), coding, dict, length)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestRoundTripRealData(t *testing.T) {
	tests := []struct {
		name     string
		data     func(testing.TB) (old, new []byte)
		maxDelta float64 // the delta must be below this fraction of the object
	}{
		{"relayd binary, two consecutive builds", relaydBuilds, contentcoding.DeltaWorth},
		{"relayd source tar, two commits", sourceTars, contentcoding.DeltaWorth},
		{"x/sync module zips v0.24.0 -> v0.25.0", moduleZips, 1.01},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, new := tt.data(t)
			if raceEnabled { // 4 MiB prefixes: still real data, 20x less work
				old, new = old[:min(len(old), 4<<20)], new[:min(len(new), 4<<20)]
			}
			delta := encodeDelta(t, old, new)
			got, err := decode(delta, wire.CodingDcz, old, int64(len(new)))
			if err != nil || !bytes.Equal(got, new) {
				t.Fatalf("dcz round trip: err %v, equal %v", err, bytes.Equal(got, new))
			}
			z := encodeZstd(t, new)
			if got, err := decode(z, wire.CodingZstd, nil, int64(len(new))); err != nil || !bytes.Equal(got, new) {
				t.Fatalf("zstd round trip: err %v", err)
			}
			ratio := float64(len(delta)) / float64(len(new))
			t.Logf("%d bytes: dcz %d (%.3fx), zstd %d (%.3fx)", len(new), len(delta), ratio, len(z), float64(len(z))/float64(len(new)))
			if ratio >= tt.maxDelta {
				t.Errorf("delta is %.3fx of the object, want < %.2f", ratio, tt.maxDelta)
			}
		})
	}
}

func TestCompressibleSample(t *testing.T) {
	rules, zip := ruleSet(t), archive(t)
	if ok, err := contentcoding.Compressible(bytes.NewReader(rules), int64(len(rules))); err != nil || !ok {
		t.Errorf("rule set: compressible %v, %v; want true", ok, err)
	}
	if ok, err := contentcoding.Compressible(bytes.NewReader(zip), int64(len(zip))); err != nil || ok {
		t.Errorf("module zip: compressible %v, %v; want false", ok, err)
	}
	gz := gzArchive(t)
	if ok, err := contentcoding.Compressible(bytes.NewReader(gz), int64(len(gz))); err != nil || ok {
		t.Errorf("gzip archive: compressible %v, %v; want false", ok, err)
	}
	z := encodeZstd(t, rules)
	if got, err := decode(z, wire.CodingZstd, nil, int64(len(rules))); err != nil || !bytes.Equal(got, rules) {
		t.Fatalf("rule set round trip: %v", err)
	}
	t.Logf("rule set %d bytes: zstd %.3fx", len(rules), float64(len(z))/float64(len(rules)))
}

// A corrupt delta never decodes to a wrong object without an error or a
// digest mismatch: every byte of the stream is flipped in turn (sampled).
func TestCorruptDeltaFails(t *testing.T) {
	old, new := sourceTars(t)
	new = new[:min(len(new), 256<<10)]
	want := digest.FromBytes(new)
	delta := encodeDelta(t, old, new)
	step := max(1, len(delta)/100)
	for i := 0; i < len(delta); i += step {
		bad := bytes.Clone(delta)
		bad[i] ^= 0x55
		got, err := decode(bad, wire.CodingDcz, old, int64(len(new)))
		if err == nil && digest.FromBytes(got) == want && !bytes.Equal(got, new) {
			t.Fatalf("byte %d flipped: a wrong object with the right digest?", i)
		}
		if err == nil && digest.FromBytes(got) != want {
			continue // the caller's verification refuses it
		}
		if err == nil && i >= contentcoding.HeaderLen && !bytes.Equal(got, new) {
			t.Fatalf("byte %d flipped: wrong bytes and no error", i)
		}
	}
	// The wrong dictionary, a truncated stream, trailing bytes.
	if _, err := decode(delta, wire.CodingDcz, new, int64(len(new))); !errors.Is(err, contentcoding.ErrDictionary) {
		t.Errorf("wrong dictionary: %v, want ErrDictionary", err)
	}
	if _, err := decode(delta[:len(delta)/2], wire.CodingDcz, old, int64(len(new))); err == nil {
		t.Error("truncated delta decoded without error")
	}
	if _, err := decode(append(bytes.Clone(delta), 1, 2, 3, 4), wire.CodingDcz, old, int64(len(new))); err == nil {
		t.Error("delta with trailing garbage decoded without error")
	}
}

// A bomb (a tiny stream of a huge output) stops at the expected length.
func TestDecodeBombStopsAtLength(t *testing.T) {
	const huge = 256 << 20
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	var bomb bytes.Buffer
	enc.Reset(&bomb)
	zeros := make([]byte, 1<<20)
	for range huge / len(zeros) {
		if _, err := enc.Write(zeros); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("bomb: %d bytes encode %d", bomb.Len(), huge)
	const length = 1 << 20
	rc, err := contentcoding.Decode(bytes.NewReader(bomb.Bytes()), wire.CodingZstd, nil, length)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if !errors.Is(err, contentcoding.ErrTooLong) || n != length {
		t.Fatalf("read %d bytes, err %v; want %d and ErrTooLong", n, err, length)
	}
	// Shorter than expected.
	if _, err := decode(encodeZstd(t, zeros), wire.CodingZstd, nil, 2<<20); !errors.Is(err, contentcoding.ErrTooShort) {
		t.Errorf("short stream: %v, want ErrTooShort", err)
	}
}

// A frame asking for a window over the bound is refused.
func TestDecodeWindowBound(t *testing.T) {
	old, new := sourceTars(t)
	delta := encodeDelta(t, old, new) // window >= len(old)+len(new)
	rc, err := contentcoding.DecodeWindow(bytes.NewReader(delta), wire.CodingDcz, old, int64(len(new)), 1<<20)
	if err == nil {
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
	}
	if err == nil {
		t.Fatal("a delta with a window over the bound decoded")
	}
}

func TestParseAccept(t *testing.T) {
	d := digest.FromBytes([]byte("x"))
	avail := contentcoding.FormatAvailableDictionary(d)
	tests := []struct {
		name, ae, ad string
		want         contentcoding.Accept
	}{
		{"none", "", "", contentcoding.Accept{}},
		{"gzip only", "gzip, br", avail, contentcoding.Accept{}},
		{"zstd", "gzip, zstd", "", contentcoding.Accept{Zstd: true}},
		{"zstd q=0", "zstd;q=0", "", contentcoding.Accept{}},
		{"dcz with dictionary", "zstd, dcz", avail, contentcoding.Accept{Zstd: true, Dcz: true, Dict: d}},
		{"dcz without dictionary", "DCZ;q=0.5", "", contentcoding.Accept{}},
		{"dcz bad dictionary", "dcz", ":notbase64!:", contentcoding.Accept{}},
		{"dcz short dictionary", "dcz", ":AAAA:", contentcoding.Accept{}},
		{"too long", "zstd," + string(bytes.Repeat([]byte("x"), 600)), "", contentcoding.Accept{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := contentcoding.ParseAccept(tt.ae, tt.ad); got != tt.want {
				t.Errorf("ParseAccept(%q, %q) = %+v, want %+v", tt.ae, tt.ad, got, tt.want)
			}
		})
	}
}
