package contentcoding_test

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/contentcoding"
	"github.com/relayd/relayd/pkg/wire"
)

// The figures of issue 16 (docs/benchmarks.md): wire bytes per object byte
// ("wire/obj") for each kind of real data, and CPU seconds (user + system,
// the whole process: GC included) per GB of object to make and to apply
// each form ("cpu-s/GB"; the encoders and decoders run single-threaded).

type pair struct {
	name string
	data func(testing.TB) (old, new []byte)
}

var pairs = []pair{
	{"binary", relaydBuilds},
	{"source-tar", sourceTars},
	{"rules", func(tb testing.TB) ([]byte, []byte) { return nil, ruleSet(tb) }},
	{"module-zip", moduleZips},
	{"archive-gz", func(tb testing.TB) ([]byte, []byte) { return nil, gzArchive(tb) }},
}

// reportPerGB reports the process's CPU seconds per GB of object since
// start (a cpuTime), for b.N operations on objBytes each.
func reportPerGB(b *testing.B, start time.Duration, objBytes int) {
	sec := (cpuTime() - start).Seconds() / float64(b.N)
	b.ReportMetric(sec/(float64(objBytes)/1e9), "cpu-s/GB")
}

// BenchmarkDelta makes and applies dcz deltas of the new version against
// the old.
func BenchmarkDelta(b *testing.B) {
	for _, p := range pairs {
		b.Run(p.name, func(b *testing.B) {
			old, new := p.data(b)
			if old == nil {
				b.Skip("no earlier version")
			}
			delta := encodeDelta(b, old, new)
			b.Run("make", func(b *testing.B) {
				b.SetBytes(int64(len(new)))
				start := cpuTime()
				for range b.N {
					encodeDelta(b, old, new)
				}
				reportPerGB(b, start, len(new))
				b.ReportMetric(float64(len(delta))/float64(len(new)), "wire/obj")
			})
			b.Run("apply", func(b *testing.B) { benchApply(b, delta, wire.CodingDcz, old, len(new), len(delta)) })
		})
	}
}

// BenchmarkZstd makes and applies the zstd form the way the cache does:
// the sample first, and identity (wire/obj 1) when it says so.
func BenchmarkZstd(b *testing.B) {
	for _, p := range pairs {
		b.Run(p.name, func(b *testing.B) {
			_, new := p.data(b)
			ok, err := contentcoding.Compressible(bytes.NewReader(new), int64(len(new)))
			if err != nil {
				b.Fatal(err)
			}
			wireBytes := len(new)
			var z []byte
			if ok {
				z = encodeZstd(b, new)
				wireBytes = min(len(z), len(new))
			}
			b.Run("make", func(b *testing.B) {
				b.SetBytes(int64(len(new)))
				start := cpuTime()
				for range b.N {
					if ok, _ := contentcoding.Compressible(bytes.NewReader(new), int64(len(new))); ok {
						encodeZstd(b, new)
					}
				}
				reportPerGB(b, start, len(new))
				b.ReportMetric(float64(wireBytes)/float64(len(new)), "wire/obj")
			})
			if z == nil {
				return
			}
			b.Run("apply", func(b *testing.B) { benchApply(b, z, wire.CodingZstd, nil, len(new), wireBytes) })
		})
	}
}

// benchApply decodes coded (coding, against dict) back to its n bytes per
// iteration, reporting CPU per GB and wireBytes per object byte.
func benchApply(b *testing.B, coded []byte, coding string, dict []byte, n, wireBytes int) {
	b.SetBytes(int64(n))
	start := cpuTime()
	for range b.N {
		rc, err := contentcoding.Decode(bytes.NewReader(coded), coding, dict, int64(n))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
	reportPerGB(b, start, n)
	b.ReportMetric(float64(wireBytes)/float64(n), "wire/obj")
}
