package proxycache

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/relayd/relayd/pkg/catalog"
)

// TestLocationKeys: which Location / Content-Location values name keys of
// this relay (RFC 9111 §4.4: the same origin only).
func TestLocationKeys(t *testing.T) {
	t.Parallel()
	up, _ := url.Parse("http://origin:8080/pub/f/doc%20x?q=1")
	root, _ := url.Parse("http://origin:8080/f/doc%20x?q=1")
	for _, c := range []struct {
		upstream *url.URL
		ref      string
		want     string // "" for none
	}{
		{up, "/f/loc", "f/loc"},
		{up, "other?v=2", "f/other?v=2"},
		{up, "http://relay:80/f/cl", "f/cl"},
		{up, "http://origin:8080/pub/f/cl", "f/cl"},
		{up, "http://origin:8080/pubx/f/cl", ""},
		{up, "http://origin:8080/f/cl", ""}, // outside the upstream's base
		{root, "http://origin:8080/f/cl", "f/cl"},
		{root, "http://elsewhere/f/cl", ""},
		{root, "ftp://relay:80/f/cl", ""},
		{root, "/-/healthz", ""},
		{nil, "http://origin:8080/f/cl", ""},
		{root, "", ""},
	} {
		got, ok := locationKeys("f/doc x?q=1", "relay:80", c.upstream, c.ref)
		if (ok && got != c.want) || (!ok && c.want != "") {
			t.Errorf("upstream %v, %q: %q %v, want %q", c.upstream, c.ref, got, ok, c.want)
		}
	}
}

// TestForwardRefused: a cache forwards nothing without ForwardMethods, on
// the relay API's paths, or when it verifies against a signed catalog
// (the tree is read-only); a body over ForwardBodyMax never goes upstream.
func TestForwardRefused(t *testing.T) {
	t.Parallel()
	body := func(n int) ForwardRequest {
		return ForwardRequest{Method: http.MethodPut, Key: "f/x", Host: "relay", Body: strings.NewReader(strings.Repeat("x", n)), Size: int64(n)}
	}
	off := newFixture(t, DefaultConfig(), 0)
	if _, err := off.cache.Forward(context.Background(), body(1)); !errors.Is(err, ErrNotForwarded) {
		t.Fatalf("without ForwardMethods: %v, want ErrNotForwarded", err)
	}
	cfg := DefaultConfig()
	cfg.ForwardMethods, cfg.ForwardBodyMax = true, 8
	on := newFixture(t, cfg, 0)
	on.up.set("/f/x", &upObject{body: []byte("ok")})
	api := body(1)
	api.Key = "-/healthz"
	if _, err := on.cache.Forward(context.Background(), api); !errors.Is(err, ErrNotForwarded) {
		t.Fatalf("a /-/ path: %v, want ErrNotForwarded", err)
	}
	for _, fr := range []ForwardRequest{body(9), {Method: http.MethodPost, Key: "f/x", Body: strings.NewReader(strings.Repeat("x", 9)), Size: -1}} {
		if _, err := on.cache.Forward(context.Background(), fr); !errors.Is(err, ErrBodyTooLarge) {
			t.Fatalf("%d-byte body (Content-Length %d) over 8: %v, want ErrBodyTooLarge", 9, fr.Size, err)
		}
	}
	resp, err := on.cache.Forward(context.Background(), body(8))
	if err != nil {
		t.Fatalf("8-byte body: %v", err)
	}
	resp.Body.Close()
	if n := on.up.count("/f/x"); n != 1 {
		t.Fatalf("the upstream saw %d requests, want the one within the bound", n)
	}
	on.cache.expect = &mapExpecter{m: map[string]catalog.Object{}}
	if _, err := on.cache.Forward(context.Background(), body(1)); !errors.Is(err, ErrNotForwarded) {
		t.Fatalf("a verifying cache: %v, want ErrNotForwarded", err)
	}
}
