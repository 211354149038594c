package proxycache

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/units"
)

// BenchmarkHit is the cache's share of a hit: index lookup, freshness,
// opening the blob and copying it to a writer.
func BenchmarkHit(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		b.Run(units.Bytes(size).String(), func(b *testing.B) {
			f := newFixture(b, DefaultConfig(), 0)
			body := randomBytes(size, 1)
			f.up.set("/o", &upObject{body: body, header: http.Header{"Cache-Control": {"max-age=86400"}}})
			obj, err := f.cache.Get(context.Background(), "o")
			if err != nil {
				b.Fatal(err)
			}
			_, _ = obj.Body.CopyTo(context.Background(), io.Discard, 0, -1)
			obj.Close()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					obj, err := f.cache.Get(context.Background(), "o")
					if err != nil || obj.Cache != object.Hit {
						b.Fatal(err)
					}
					_, _ = obj.Body.CopyTo(context.Background(), io.Discard, 0, -1)
					obj.Close()
				}
			})
		})
	}
}

// BenchmarkHitWithRequest is BenchmarkHit for a request that hands its
// header to the cache (as the content handler does): the request's
// directives are parsed and the stored response's Vary and Authorization
// rules checked on every hit.
func BenchmarkHitWithRequest(b *testing.B) {
	f := newFixture(b, DefaultConfig(), 0)
	body := randomBytes(4<<10, 1)
	f.up.set("/o", &upObject{body: body, header: http.Header{"Cache-Control": {"max-age=86400"}, "Etag": {`"o1"`}}})
	ctx := WithRequest(context.Background(), http.Header{"User-Agent": {"Debian APT-HTTP/1.3 (2.6.1)"},
		"Accept": {"*/*"}, "Cache-Control": {"max-stale=60"}})
	obj, err := f.cache.Get(ctx, "o")
	if err != nil {
		b.Fatal(err)
	}
	_, _ = obj.Body.CopyTo(ctx, io.Discard, 0, -1)
	obj.Close()
	settled(b, f.cache, "o")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			obj, err := f.cache.Get(ctx, "o")
			if err != nil || obj.Cache != object.Hit {
				b.Fatal(err)
			}
			_, _ = obj.Body.CopyTo(ctx, io.Discard, 0, -1)
			obj.Close()
		}
	})
}
