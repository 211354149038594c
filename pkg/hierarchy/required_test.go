package hierarchy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRequiredSkipsA404: what every upstream must serve is looked for on
// the next upstream and the fallback when one answers 404; an ordinary
// request takes the 404 as the answer.
func TestRequiredSkipsA404(t *testing.T) {
	t.Parallel()
	without := httptest.NewServer(http.NotFoundHandler())
	defer without.Close()
	with := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "timestamp") }))
	defer with.Close()

	status := func(c *Client, ctx context.Context) (int, error) {
		resp, err := c.Fetch(ctx, "-/tuf/timestamp.json", http.Header{})
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	for _, tc := range []struct {
		name     string
		up, fall []string
	}{
		{"another upstream", []string{without.URL, with.URL}, nil},
		{"the fallback", []string{without.URL}, []string{with.URL}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Upstreams, cfg.Fallback = tc.up, tc.fall
			required := newClient(t, cfg)
			for i := range 20 {
				if got, err := status(required, Required(context.Background())); err != nil || got != http.StatusOK {
					t.Fatalf("required, try %d: status %d, %v; want 200 from the upstream that has it", i+1, got, err)
				}
			}
			// The same without Required: the first 404 is the answer.
			plain := newClient(t, cfg)
			saw404 := false
			for range 20 {
				got, err := status(plain, context.Background())
				if err != nil {
					t.Fatal(err)
				}
				saw404 = saw404 || got == http.StatusNotFound
			}
			if !saw404 {
				t.Error("a plain request never got the 404 (the control of this test)")
			}
		})
	}

	cfg := DefaultConfig()
	cfg.Upstreams, cfg.Fallback = []string{without.URL}, []string{without.URL}
	if _, err := status(newClient(t, cfg), Required(context.Background())); !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("every upstream and fallback 404: err = %v, want ErrUnavailable and ErrNotFound", err)
	}
}
