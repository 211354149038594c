package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

type cacheListing struct {
	Objects []struct {
		Path   string `json:"path"`
		Size   int64  `json:"size"`
		Pinned bool   `json:"pinned"`
	} `json:"objects"`
}

func (l cacheListing) paths() []string {
	var out []string
	for _, o := range l.Objects {
		out = append(out, o.Path)
	}
	return out
}

// TestCacheAdmin: relayd cache ls / stats / rm / pin / prefetch against a
// real relay, and a pinned object surviving eviction.
func TestCacheAdmin(t *testing.T) {
	t.Parallel()
	origin := startOrigin(t)
	objs := map[string][]byte{}
	for _, name := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		objs[name] = makeData(uint64(len(name)+int(name[0])), 1<<20)
		origin.set("/pool/"+name+".deb", newObject(objs[name], "max-age=3600"))
	}
	relay := startRelayd(t, "--mode", "proxy", "--upstream", origin.URL, "--data-dir", t.TempDir(),
		"--admin", "127.0.0.1:0", "--cache-max", "3MiB")
	admin := "http://" + relay.WaitLogAddr(t, "admin listening")
	c := newClient()
	cli := func(args ...string) string {
		t.Helper()
		// Flags go before the paths.
		argv := append([]string{"cache", args[0], "--admin", admin}, args[1:]...)
		out, stderr, err := runRelayd(t, 30*time.Second, argv...)
		if err != nil {
			t.Fatalf("relayd cache %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
		return out
	}
	ls := func(args ...string) []string {
		t.Helper()
		var l cacheListing
		if err := json.Unmarshal([]byte(cli(append([]string{"ls", "--json"}, args...)...)), &l); err != nil {
			t.Fatal(err)
		}
		return l.paths()
	}
	for _, n := range []string{"a", "b"} {
		wantObject(t, get(t, c, http.MethodGet, relay.URL+"/pool/"+n+".deb"), objs[n], "GET "+n)
	}
	wantObject(t, get(t, c, http.MethodGet, relay.URL+"/pool/a.deb"), objs["a"], "GET a again")
	if got := ls(); !slices.Equal(got, []string{"pool/a.deb", "pool/b.deb"}) {
		t.Fatalf("cache ls: %v", got)
	}
	if out := cli("ls"); !strings.Contains(out, "pool/a.deb") || !strings.Contains(out, "1 MiB") {
		t.Errorf("cache ls (table):\n%s", out)
	}
	var stats struct {
		Hits, Misses  int64
		HitRatio      float64 `json:"hit_ratio"`
		BytesServed   int64   `json:"bytes_served"`
		UpstreamBytes int64   `json:"upstream_bytes"`
	}
	if err := json.Unmarshal([]byte(cli("stats", "--json")), &stats); err != nil {
		t.Fatal(err)
	}
	if stats.Hits != 1 || stats.Misses != 2 || stats.BytesServed != 3<<20 || stats.UpstreamBytes != 2<<20 {
		t.Errorf("cache stats %+v: want 1 hit, 2 misses, 3 MiB served, 2 MiB from upstream", stats)
	}

	// Pin a; then fill the 3 MiB quota over and over: a stays.
	if out := cli("pin", "/pool/a.deb"); !strings.Contains(out, "pinned pool/a.deb") {
		t.Errorf("cache pin: %q", out)
	}
	if got := ls("--pinned"); !slices.Equal(got, []string{"pool/a.deb"}) {
		t.Fatalf("cache ls --pinned: %v", got)
	}
	for _, n := range []string{"d", "e", "f"} {
		wantObject(t, get(t, c, http.MethodGet, relay.URL+"/pool/"+n+".deb"), objs[n], "GET "+n)
	}
	if got := ls(); !slices.Contains(got, "pool/a.deb") || len(got) > 3 {
		t.Fatalf("after filling the quota: %v; want the pinned a kept and at most 3 objects", got)
	}

	// rm: gone, and fetched again from the origin.
	cli("rm", "pool/f.deb")
	if got := ls(); slices.Contains(got, "pool/f.deb") {
		t.Fatalf("after cache rm: %v", got)
	}
	if r := get(t, c, http.MethodGet, relay.URL+"/pool/f.deb"); r.cache() != "MISS" {
		t.Errorf("GET f after rm: X-Relay-Cache %q, want MISS", r.cache())
	}
	if _, stderr, err := runRelayd(t, 30*time.Second, "cache", "rm", "--admin", admin, "pool/nothing.deb"); err == nil || !strings.Contains(stderr, "not cached") {
		t.Errorf("cache rm of an uncached path: err %v, stderr %q", err, stderr)
	}

	// prefetch: warmed at once, then a HIT.
	before := origin.getCount("/pool/g.deb")
	cli("prefetch", "--wait", "pool/g.deb")
	if n := origin.getCount("/pool/g.deb"); n != before+1 {
		t.Errorf("origin GETs of g: %d, want %d", n, before+1)
	}
	if r := get(t, c, http.MethodGet, relay.URL+"/pool/g.deb"); r.cache() != "HIT" {
		t.Errorf("GET g after prefetch: X-Relay-Cache %q, want HIT", r.cache())
	}

	// Bad requests get JSON errors with the right status.
	for _, tc := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{http.MethodPost, "/v1/cache/prefetch", `{"include":["security/**"]}`, http.StatusConflict, "no_catalog"},
		{http.MethodPost, "/v1/cache/prefetch", `{"paths":["../etc/passwd"]}`, http.StatusBadRequest, "bad_path"},
		{http.MethodPost, "/v1/cache/prefetch", `{"paths":`, http.StatusBadRequest, "bad_json"},
		{http.MethodPost, "/v1/cache/pin", `{}`, http.StatusBadRequest, "no_paths"},
		{http.MethodGet, "/v1/cache?limit=-1", "", http.StatusBadRequest, "bad_limit"},
		{http.MethodDelete, "/v1/cache/-/mirror/x", "", http.StatusBadRequest, "bad_path"},
	} {
		req, _ := http.NewRequest(tc.method, admin+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Code string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != tc.status || e.Code != tc.code {
			t.Errorf("%s %s %s: %d %q, want %d %q", tc.method, tc.path, tc.body, resp.StatusCode, e.Code, tc.status, tc.code)
		}
	}
}
