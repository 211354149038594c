package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

type syncer struct{ triggered int }

func (s *syncer) Trigger()               { s.triggered++ }
func (s *syncer) Progress() SyncProgress { return SyncProgress{State: SyncInSync, Generation: 3} }

func newAdmin(t *testing.T, token string, sy Syncer) *httptest.Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "relayd_test_total", Help: "t"}))
	h := New(Config{
		Status:   func() Status { return Status{Node: "n1"} },
		Registry: reg, Token: token, Sync: sy,
		Members: func() (Members, error) { return Members{Members: []Member{{Name: "n1"}}}, nil },
	}, zerolog.Nop())
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestTokenAuth(t *testing.T) {
	t.Parallel()
	const token = "s3cret-token-0123456789"
	srv := newAdmin(t, token, nil)
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"missing", "", 401},
		{"wrong", "nope-nope-nope-nope", 401},
		{"prefix of the right one", token[:10], 401},
		{"right", token, 200},
	} {
		code, body := do(t, "GET", srv.URL+"/v1/status", tc.token)
		if code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.want)
		}
		if code == 401 && (strings.Contains(body, "n1") || !strings.Contains(body, `"unauthorized"`)) {
			t.Errorf("%s: 401 body %q leaks or is not the JSON error", tc.name, body)
		}
	}
	if code, _ := do(t, "GET", srv.URL+"/metrics", ""); code != 401 {
		t.Errorf("metrics without token: %d", code)
	}
}

// TestBearerScheme: the auth scheme is case-insensitive (RFC 9110
// section 11.1), as clients and proxies send it; the token is not.
func TestBearerScheme(t *testing.T) {
	t.Parallel()
	const token = "s3cret-token-0123456789"
	srv := newAdmin(t, token, nil)
	for _, tc := range []struct {
		header string
		want   int
	}{
		{"Bearer " + token, 200},
		{"bearer " + token, 200},
		{"BEARER " + token, 200},
		{"bEaReR " + token, 200},
		{"Bearer   " + token, 200},
		{"Bearer " + strings.ToUpper(token), 401},
		{"Basic " + token, 401},
		{"Bearer" + token, 401},
		{"Bearer", 401},
		{"Bearer ", 401},
		{"Bearers " + token, 401},
		{"Bearer " + token + " x", 401},
	} {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/status", nil)
		req.Header.Set("Authorization", tc.header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Authorization: %q: %d, want %d", tc.header, resp.StatusCode, tc.want)
		}
	}
}

func TestEndpoints(t *testing.T) {
	t.Parallel()
	sy := &syncer{}
	srv := newAdmin(t, "", sy)
	code, body := do(t, "GET", srv.URL+"/v1/status", "")
	if code != 200 || !strings.Contains(body, `"node":"n1"`) {
		t.Fatalf("status: %d %s", code, body)
	}
	code, body = do(t, "GET", srv.URL+"/v1/sync", "")
	var p map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &p) != nil || p["state"] != "in-sync" {
		t.Fatalf("sync progress: %d %s", code, body)
	}
	if code, _ = do(t, "POST", srv.URL+"/v1/sync", ""); code != 202 || sy.triggered != 1 {
		t.Fatalf("sync trigger: %d, triggered %d", code, sy.triggered)
	}
	if code, body = do(t, "GET", srv.URL+"/metrics", ""); code != 200 || !strings.Contains(body, "relayd_test_total") {
		t.Fatalf("metrics: %d", code)
	}
	if code, _ = do(t, "GET", srv.URL+"/v1/members", ""); code != 200 {
		t.Fatalf("members: %d", code)
	}
	if code, body = do(t, "GET", srv.URL+"/v1/nothing", ""); code != 404 || !strings.Contains(body, `"not_found"`) {
		t.Fatalf("unknown endpoint: %d %s", code, body)
	}
	// Without a mirror the sync endpoints say so.
	srv2 := newAdmin(t, "", nil)
	if code, body = do(t, "POST", srv2.URL+"/v1/sync", ""); code != 404 || !strings.Contains(body, "no_mirror") {
		t.Fatalf("sync without mirror: %d %s", code, body)
	}
}
