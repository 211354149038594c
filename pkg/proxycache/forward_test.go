package proxycache

import (
	"net/url"
	"testing"
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
