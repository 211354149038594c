package proxycache

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/hierarchy"
	"github.com/relayd/relayd/pkg/store"
)

// A prefetch's fill is background traffic: a transfer window of rate 0
// holds it (the upstream is not asked). An agent's request for the same
// key joins the fill and promotes it: it goes at once.
func TestPrefetchFillHeldUntilJoined(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	body := randomBytes(50000, 7)
	up.set("/pool/a.deb", &upObject{body: body, header: http.Header{"Cache-Control": {"max-age=3600"}}})
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	st, err := store.Open(store.DefaultConfig(t.TempDir()), log, clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	hc := hierarchy.DefaultConfig()
	hc.Upstreams = []string{up.srv.URL}
	hc.Schedule, hc.Location = "*=0", time.UTC // always held
	cl, err := hierarchy.New(hc, log)
	if err != nil {
		t.Fatal(err)
	}
	c := New(DefaultConfig(), st, cl, nil, log, clock.Real{})
	t.Cleanup(func() {
		c.Close()
		_ = st.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p := NewPrefetcher(c, log, clock.Real{})
	if _, err := p.Start(hierarchy.Background(ctx), []string{"pool/a.deb"}); err != nil {
		t.Fatal(err)
	}
	held := func() int64 {
		for _, w := range cl.WindowStatus().Waiting {
			if w.Class == "background" {
				return w.Requests
			}
		}
		return 0
	}
	for end := time.Now().Add(10 * time.Second); held() != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the prefetch fill is not held by the window (upstream asked %d times)", up.count("/pool/a.deb"))
		}
	}
	if n := up.count("/pool/a.deb"); n != 0 {
		t.Fatalf("upstream asked %d times while the window holds the prefetch", n)
	}
	obj, err := c.Get(ctx, "pool/a.deb") // an agent: joins and promotes the fill
	if err != nil {
		t.Fatalf("agent request during the window: %v", err)
	}
	defer obj.Close()
	var buf bytes.Buffer
	if _, err := obj.Body.CopyTo(ctx, &buf, 0, -1); err != nil || !bytes.Equal(buf.Bytes(), body) {
		t.Fatalf("agent got %d bytes, %v", buf.Len(), err)
	}
	if n := up.count("/pool/a.deb"); n != 1 {
		t.Fatalf("upstream asked %d times, want 1 (one fill for both)", n)
	}
}
