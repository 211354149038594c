package proxycache

import (
	"context"
	"net/http"
	"testing"
)

// TestVaryStarAskedOnce: the answer to the request that started a fill is
// its own even when it varies on everything (Vary: *): one request, one
// upstream GET (the suite counts a second one as a retry); the next
// request is not served from the store and asks again.
func TestVaryStarAskedOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, DefaultConfig(), 0)
	f.up.set("/star", &upObject{body: []byte("star"), header: http.Header{"Cache-Control": {"max-age=3600"}, "Vary": {"*"}}})
	for i := 1; i <= 2; i++ {
		ctx := WithRequest(context.Background(), http.Header{"Accept": {"*/*"}})
		obj, err := f.cache.Get(ctx, "star")
		if err != nil {
			t.Fatal(err)
		}
		obj.Close()
		settled(t, f.cache, "star")
		if n := f.up.count("/star"); n != i {
			t.Fatalf("after %d requests the upstream was asked %d times, want %d", i, n, i)
		}
	}
}
