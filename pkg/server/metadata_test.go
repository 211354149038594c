package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/origin"
	"github.com/relayd/relayd/pkg/wire"
)

// TestMetadataEndpoint: /-/tuf/<name> serves the served names only (any
// other name, or a path below, is 404 before the node is asked),
// timestamp.json for revalidation on every use and the versioned files
// as immutable; a relay behind the generation asked for answers 503.
func TestMetadataEndpoint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tuf := filepath.Join(dir, "-", "tuf")
	if err := os.MkdirAll(tuf, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"timestamp.json", "1.root.json", "3.snapshot.json", "2.security-bin-0a.json", "root.json", "secret.txt"} {
		if err := os.WriteFile(filepath.Join(tuf, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o, err := origin.New(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	var asked []string
	srv := httptest.NewServer(NewContent(ContentConfig{Source: o, Relays: func() wire.Relays { return wire.Relays{Relays: []wire.Relay{}} },
		Metadata: func(ctx context.Context, name string) (*object.Object, error) {
			asked = append(asked, name)
			return o.Metadata(ctx, name)
		},
		Behind: func(g uint64) bool { return g > 3 }}, zerolog.New(zerolog.NewTestWriter(t))))
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		path, generation string
		status           int
		cacheControl     string
	}{
		{"/-/tuf/timestamp.json", "", 200, "no-cache"},
		{"/-/tuf/timestamp.json", "3", 200, "no-cache"},
		{"/-/tuf/timestamp.json", "4", 503, ""},
		{"/-/tuf/1.root.json", "", 200, "public, max-age=31536000, immutable"},
		{"/-/tuf/3.snapshot.json", "", 200, "public, max-age=31536000, immutable"},
		{"/-/tuf/2.security-bin-0a.json", "", 200, "public, max-age=31536000, immutable"},
		{"/-/tuf/2.root.json", "", 404, ""},
		{"/-/tuf/root.json", "", 404, ""},
		{"/-/tuf/secret.txt", "", 404, ""},
		{"/-/tuf/", "", 404, ""},
		{"/-/tuf/x/1.root.json", "", 404, ""},
		{"/-/tuf/..%2Fcatalog", "", 404, ""},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
		if tc.generation != "" {
			req.Header.Set(wire.GenerationHeader, tc.generation)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s (generation %q): status %d, want %d: %s", tc.path, tc.generation, resp.StatusCode, tc.status, b)
			continue
		}
		if tc.status == 200 && (resp.Header.Get("Cache-Control") != tc.cacheControl || string(b) != filepath.Base(tc.path)) {
			t.Errorf("%s: Cache-Control %q, body %q; want %q and the file", tc.path, resp.Header.Get("Cache-Control"), b, tc.cacheControl)
		}
	}
	for _, name := range asked {
		if !wire.TUFName(name) {
			t.Errorf("the node was asked for %q", name)
		}
	}
}
