// The client against what pkg/tufrepo publishes (a team delegation, rest
// in hashed bins, a re-signed timestamp), served over HTTP on 127.0.0.1.
package tufclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relayd/relayd/internal/tuftest"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/tufrepo"
)

// httpFetcher gets /-/tuf/<name> from base, bounded by catalog.Read.
type httpFetcher struct {
	base string
	mu   sync.Mutex
	reqs []string
}

func (h *httpFetcher) FetchMeta(ctx context.Context, name string, max int64) ([]byte, error) {
	h.mu.Lock()
	h.reqs = append(h.reqs, name)
	h.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base+"/-/tuf/"+name, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return catalog.Read(resp.Body, resp.ContentLength, max, "")
	case http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return nil, fmt.Errorf("GET %s: %s", name, resp.Status)
}

func (h *httpFetcher) requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.reqs
	h.reqs = nil
	return r
}

// serveTree serves dir on a loopback listener until the test ends.
func serveTree(t *testing.T, dir string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir)), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Error(err)
		}
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return "http://" + ln.Addr().String()
}

func TestClientReadsTufrepo(t *testing.T) {
	base := t.TempDir()
	tree, keys := filepath.Join(base, "tree"), filepath.Join(base, "keys")
	now := t0
	opt := tufrepo.Options{Now: func() time.Time { return now }, Workers: 2, MaxDirectTargets: 4}
	roles, ring := tuftest.Keys(t, keys)
	want := map[string]string{"security/2026/CVE-1.rpm": "patch", "software/linux-amd64/1.0/app.tgz": "app"}
	for i := range 20 {
		want[fmt.Sprintf("debian/pool/p%d.deb", i)] = fmt.Sprintf("package %d", i)
	}
	for p, body := range want {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(tree, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tree, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := tufrepo.Init(tree, ring, roles, opt); err != nil || len(res.Needs) > 0 {
		t.Fatalf("init: %v %+v", err, res)
	}
	if _, err := tufrepo.Publish(context.Background(), tree, ring, opt); err != nil {
		t.Fatal(err)
	}
	secKey := roles[metadata.TARGETS].Keys
	if _, err := tufrepo.Delegate(context.Background(), tree, ring, tufrepo.Delegation{Role: "security", Paths: []string{"security/**"}, Keys: secKey}, opt); err != nil {
		t.Fatal(err)
	}

	root, err := os.ReadFile(filepath.Join(tree, "-", "tuf", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	f := &httpFetcher{base: serveTree(t, tree)}
	c, err := New(root, Options{Dir: filepath.Join(base, "client"), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Update(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Catalog.Objects) != len(want) {
		t.Errorf("%d objects, want %d", len(st.Catalog.Objects), len(want))
	}
	for p, body := range want {
		o, ok := st.Catalog.Lookup(p)
		if !ok || o.Size != int64(len(body)) {
			t.Errorf("%s: %+v %v", p, o, ok)
		}
	}
	if !slices.ContainsFunc(f.requests(), containsBin) {
		t.Error("no hashed bin fetched: the test does not cover bins")
	}
	// The origin re-signs the timestamp a day later: one request.
	now = now.Add(23 * time.Hour)
	if err := tufrepo.ResignTimestamp(tree, ring, 0, now); err != nil {
		t.Fatal(err)
	}
	st2, err := c.Update(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if reqs := f.requests(); len(reqs) != 1 || st2.TimestampVersion <= st.TimestampVersion || st2.Catalog != st.Catalog {
		t.Errorf("re-signed timestamp: requests %v, timestamp %d after %d", reqs, st2.TimestampVersion, st.TimestampVersion)
	}
}

func containsBin(name string) bool { return strings.Contains(name, "-bin-") }
