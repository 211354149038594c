// The spec against the code, both ways: the routers' routes against the
// spec's paths, and real responses of running nodes against its schemas.
package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relayd/relayd/internal/tuftest"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/relayd/relayd/internal/testlog"
	"github.com/relayd/relayd/pkg/admin"
	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/node"
	"github.com/relayd/relayd/pkg/origin"
	"github.com/relayd/relayd/pkg/server"
	"github.com/relayd/relayd/pkg/treeauth"
	"github.com/relayd/relayd/pkg/tufrepo"
	"github.com/relayd/relayd/pkg/wire"
)

const specFile = "openapi.yaml"

// loadSpec loads and validates the spec; each call returns a fresh copy
// that the caller may change.
func loadSpec(t testing.TB) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(specFile)
	if err != nil {
		t.Fatalf("load %s: %v", specFile, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("%s is not valid OpenAPI: %v", specFile, err)
	}
	return doc
}

func TestSpecIsValid(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.0.") {
		t.Errorf("openapi %q, want 3.0.x", doc.OpenAPI)
	}
	if len(doc.Servers) != 1 || !strings.HasSuffix(doc.Servers[0].URL, ":20080") {
		t.Errorf("top-level servers %v: want the content port, 20080", doc.Servers)
	}
	if doc.Components.SecuritySchemes["bearerAuth"] == nil {
		t.Errorf("no bearerAuth security scheme")
	}
	for path, item := range doc.Paths.Map() {
		adm := isAdmin(item)
		if adm && (len(item.Servers) != 1 || !strings.HasSuffix(item.Servers[0].URL, ":20090")) {
			t.Errorf("%s: admin servers %v, want the admin port, 20090", path, item.Servers)
		}
		for method, op := range item.Operations() {
			wantTag := "content"
			if adm {
				wantTag = "admin"
				if op.Security == nil || len(*op.Security) == 0 {
					t.Errorf("%s %s: an admin operation without security", method, path)
				}
			}
			if !slices.Equal(op.Tags, []string{wantTag}) {
				t.Errorf("%s %s: tags %v, want [%s]", method, path, op.Tags, wantTag)
			}
		}
	}
}

// isAdmin reports whether a spec path is on the admin port: admin paths
// carry their own servers entry, content paths use the top-level one.
func isAdmin(item *openapi3.PathItem) bool { return len(item.Servers) > 0 }

// codeRouters returns the two routers as the code builds them. Their
// routes do not depend on the configuration.
func codeRouters(t testing.TB) (content, adm chi.Routes) {
	t.Helper()
	c := server.NewContent(server.ContentConfig{Relays: func() wire.Relays { return wire.Relays{} }}, zerolog.Nop())
	h := admin.New(admin.Config{Registry: prometheus.NewRegistry()}, zerolog.Nop())
	ar, ok := h.(chi.Routes)
	if !ok {
		t.Fatalf("admin.New returns %T, not a chi router: the route check needs its routes", h)
	}
	return c.Routes(), ar
}

// chiRegexp matches a chi parameter with a regexp, {name:re}.
var chiRegexp = regexp.MustCompile(`\{([^{}:]+):[^{}]*\}`)

// specPaths maps a chi pattern to the spec paths that document it.
//   - "/*", the content port's catch-all, is the object route: "/{path}".
//   - "/debug/pprof/*" is the profiler's index and its named profiles:
//     "/debug/pprof/" and "/debug/pprof/{profile}".
//   - "/v1/cache/" is the root of the mounted cache router: "/v1/cache";
//     "/v1/cache/*" a cached object: "/v1/cache/{path}".
//   - {name:regexp} is {name}; other patterns are spec paths as they are.
func specPaths(pattern string) []string {
	switch pattern {
	case "/*":
		return []string{"/{path}"}
	case "/debug/pprof/*":
		return []string{"/debug/pprof/", "/debug/pprof/{profile}"}
	case "/v1/cache/":
		return []string{"/v1/cache"}
	case "/v1/cache/*":
		return []string{"/v1/cache/{path}"}
	}
	return []string{chiRegexp.ReplaceAllString(pattern, "{$1}")}
}

// stdMethods are HTTP's methods; a route registered for all of them
// (chi's HandleFunc, Handle: also QUERY and any method added to chi)
// answers any method.
var stdMethods = []string{"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}

// routeSet is a router's routes: spec path → methods.
type routeSet map[string]map[string]bool

// walk collects a router's routes under their spec paths. A route
// registered for every method is recorded as "*": the spec documents it
// with GET (OpenAPI 3.0 has no CONNECT, and the profiler is used with
// GET).
func walk(t *testing.T, r chi.Routes) routeSet {
	t.Helper()
	byPattern := map[string][]string{}
	err := chi.Walk(r, func(method, pattern string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		byPattern[pattern] = append(byPattern[pattern], method)
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	out := routeSet{}
	for pattern, methods := range byPattern {
		anyMethod := true
		for _, m := range stdMethods {
			anyMethod = anyMethod && slices.Contains(methods, m)
		}
		for _, sp := range specPaths(pattern) {
			if strings.Contains(sp, "*") {
				t.Errorf("route %s has a wildcard with no spec path: add it to specPaths", pattern)
				continue
			}
			if out[sp] == nil {
				out[sp] = map[string]bool{}
			}
			if anyMethod {
				out[sp]["*"] = true
				continue
			}
			for _, m := range methods {
				out[sp][m] = true
			}
		}
	}
	return out
}

// TestRoutesMatchSpec checks both ways that every route of the two
// routers is in the spec, on the right port, and every spec operation is
// routed by the right router.
func TestRoutesMatchSpec(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	content, adm := codeRouters(t)
	surfaces := []struct {
		name   string
		admin  bool
		router chi.Routes
		routes routeSet
	}{
		{"content", false, content, walk(t, content)},
		{"admin", true, adm, walk(t, adm)},
	}

	// Code → spec.
	for _, s := range surfaces {
		if len(s.routes) == 0 {
			t.Fatalf("%s router has no routes", s.name)
		}
		for sp, methods := range s.routes {
			item := doc.Paths.Value(sp)
			if item == nil {
				t.Errorf("%s route %s is not in %s", s.name, sp, specFile)
				continue
			}
			if isAdmin(item) != s.admin {
				t.Errorf("%s route %s is documented on the other port", s.name, sp)
			}
			for m := range methods {
				if m == "*" {
					m = http.MethodGet
				}
				if item.GetOperation(m) == nil {
					t.Errorf("%s route %s %s is not in %s", s.name, m, sp, specFile)
				}
			}
		}
	}

	// Spec → code.
	for _, sp := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(sp)
		s := surfaces[0]
		if isAdmin(item) {
			s = surfaces[1]
		}
		for m := range item.Operations() {
			methods := s.routes[sp]
			if !methods[m] && !methods["*"] {
				t.Errorf("%s %s is in %s but the %s router does not route it", m, sp, specFile, s.name)
				continue
			}
			// And the router sends a concrete request for it to a route
			// documented as this path (not shadowed by another).
			concrete := regexp.MustCompile(`\{[^{}]+\}`).ReplaceAllString(sp, "x")
			pattern := s.router.Find(chi.NewRouteContext(), m, concrete)
			if pattern == "" || !slices.Contains(specPaths(pattern), sp) {
				t.Errorf("%s %s (as %s) is routed to %q, which is not documented as %s", m, sp, concrete, pattern, sp)
			}
		}
	}
}

// target is one server under test, with a spec router whose servers are
// its real addresses.
type target struct {
	name    string
	content string // content base URL
	admin   string // admin base URL; "" none
	token   string // admin bearer token; "" none
	router  routers.Router
}

// newTarget builds the spec router for a server's real addresses: the
// content URL for the top-level server, the admin URL for admin paths.
func newTarget(t *testing.T, name, content, adm, token string) *target {
	t.Helper()
	doc := loadSpec(t)
	doc.Servers = openapi3.Servers{{URL: content}}
	if adm == "" {
		adm = "http://admin.invalid"
	}
	for _, item := range doc.Paths.Map() {
		if isAdmin(item) {
			item.Servers = openapi3.Servers{{URL: adm}}
		}
	}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("spec router for %s: %v", name, err)
	}
	return &target{name: name, content: content, admin: adm, token: token, router: r}
}

// startNode runs a node until the test ends.
func startNode(t *testing.T, cfg node.Config, lw *testlog.Writer) *node.Node {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	cfg.DrainTimeout = 2 * time.Second
	n, err := node.New(cfg, zerolog.New(lw).Level(zerolog.InfoLevel).With().Timestamp().Logger(), clock.Real{})
	if err != nil {
		t.Fatalf("node %s: %v", cfg.Node, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("node %s: %v", cfg.Node, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("node %s still running 10 s after its context ended", cfg.Node)
		}
	})
	return n
}

// call is one request and the status it must get.
type call struct {
	t      *target
	admin  bool // on the admin port
	method string
	path   string // escaped path and query
	header map[string]string
	body   string
	want   int
	// noToken leaves the admin token out.
	noToken bool
	// badRequest: the request breaks the spec on purpose; it is not
	// validated, its response is.
	badRequest bool
	// unrouted: no spec operation answers this request (an unknown
	// endpoint, a method not allowed); the response must still be the
	// spec's Error.
	unrouted bool
}

// checker sends calls and validates them against the spec.
type checker struct {
	client *http.Client
	// The code's routers, to tell object paths from the others.
	content, admin chi.Routes
	errSch         *openapi3.Schema
}

func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecurityScheme.Type != "http" || in.SecurityScheme.Scheme != "bearer" {
		return fmt.Errorf("unknown security scheme %s", in.SecuritySchemeName)
	}
	if !strings.HasPrefix(in.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ") {
		return errors.New("no bearer token")
	}
	return nil
}

// lookupPath is the path the spec router sees for a request. An object
// path spans segments (chi's "/*" and "/v1/cache/*"), while an OpenAPI
// 3.0 path parameter is one segment: the object key is percent-encoded
// into one, as a generic OpenAPI client would send it.
func (c *checker) lookupPath(admin bool, method, escapedPath string) string {
	routes := c.content
	if admin {
		routes = c.admin
	}
	pattern := routes.Find(chi.NewRouteContext(), method, escapedPath)
	sps := specPaths(pattern)
	if !strings.HasSuffix(pattern, "/*") || len(sps) != 1 || !strings.HasSuffix(sps[0], "/{path}") {
		return escapedPath
	}
	prefix := strings.TrimSuffix(pattern, "*")
	return prefix + strings.ReplaceAll(strings.TrimPrefix(escapedPath, prefix), "/", "%2F")
}

// do sends cl, checks its status and validates request and response
// against the spec. It returns the response with its body read.
func (c *checker) do(t *testing.T, cl call) (*http.Response, []byte) {
	t.Helper()
	base := cl.t.content
	if cl.admin {
		base = cl.t.admin
	}
	what := fmt.Sprintf("%s: %s %s", cl.t.name, cl.method, cl.path)
	newReq := func(url string) *http.Request {
		var body io.Reader
		if cl.body != "" {
			body = strings.NewReader(cl.body)
		}
		req, err := http.NewRequest(cl.method, url, body)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		for k, v := range cl.header {
			req.Header.Set(k, v)
		}
		if cl.admin && cl.t.token != "" && !cl.noToken {
			req.Header.Set("Authorization", "Bearer "+cl.t.token)
		}
		return req
	}
	req := newReq(base + cl.path)
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s: read: %v", what, err)
	}
	if resp.StatusCode != cl.want {
		t.Errorf("%s: status %d, want %d; body %.300s", what, resp.StatusCode, cl.want, body)
		return resp, body
	}
	if (cl.method == http.MethodHead || resp.StatusCode == http.StatusNotModified) && len(body) > 0 {
		t.Errorf("%s: %d with a body of %d bytes", what, resp.StatusCode, len(body))
	}

	escaped, query, _ := strings.Cut(cl.path, "?")
	lookupURL := base + c.lookupPath(cl.admin, cl.method, escaped)
	if query != "" {
		lookupURL += "?" + query
	}
	lookup := newReq(lookupURL)
	route, params, err := cl.t.router.FindRoute(lookup)
	if cl.unrouted {
		if err == nil {
			t.Errorf("%s: expected no spec operation, found %s %s", what, route.Method, route.Path)
		}
		c.validateError(t, what, resp, body)
		return resp, body
	}
	if err != nil {
		t.Errorf("%s: no spec operation: %v", what, err)
		return resp, body
	}
	ctx := context.Background()
	in := &openapi3filter.RequestValidationInput{Request: lookup, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: authenticate, MultiError: true}}
	if !cl.badRequest {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			t.Errorf("%s: the request does not match the spec: %v", what, err)
		}
	}
	if route.Operation.Responses.Status(resp.StatusCode) == nil {
		t.Errorf("%s: status %d is not documented for %s %s", what, resp.StatusCode, route.Method, route.Path)
	}
	err = openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	})
	if err != nil {
		t.Errorf("%s: the %d response does not match the spec: %v\nbody: %.500s", what, resp.StatusCode, err, body)
	}
	return resp, body
}

// validateError checks a response that no spec operation describes
// against the Error schema every error shares.
func (c *checker) validateError(t *testing.T, what string, resp *http.Response, body []byte) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: error with Content-Type %q", what, ct)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Errorf("%s: error body is not JSON: %v", what, err)
		return
	}
	if err := c.errSch.VisitJSON(v); err != nil {
		t.Errorf("%s: error body does not match Error: %v", what, err)
	}
}

// openEvents opens an event stream, validates its status and headers
// against the spec (the body never ends) and reads its first line. The
// stream stays open until the returned function is called.
func (c *checker) openEvents(t *testing.T, tg *target, path string, header map[string]string) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tg.content+path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("%s: events: %v", tg.name, err)
	}
	closeFn := func() { cancel(); resp.Body.Close() }
	what := tg.name + ": GET " + path
	if resp.StatusCode != http.StatusOK {
		t.Errorf("%s: status %d", what, resp.StatusCode)
		return closeFn
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "retry: 2000\n" {
		t.Errorf("%s: first line %q, %v", what, line, err)
	}
	lookup, _ := http.NewRequest(http.MethodGet, tg.content+path, nil)
	route, params, err := tg.router.FindRoute(lookup)
	if err != nil {
		t.Errorf("%s: no spec operation: %v", what, err)
		return closeFn
	}
	in := &openapi3filter.RequestValidationInput{Request: lookup, PathParams: params, Route: route}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		t.Errorf("%s: the request does not match the spec: %v", what, err)
	}
	spec := route.Operation.Responses.Status(http.StatusOK)
	if spec == nil || spec.Value.Content.Get(resp.Header.Get("Content-Type")) == nil {
		t.Errorf("%s: Content-Type %q is not documented", what, resp.Header.Get("Content-Type"))
	}
	err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: true},
	})
	if err != nil {
		t.Errorf("%s: the response headers do not match the spec: %v", what, err)
	}
	return closeFn
}

// waitFor polls f every 20 ms until it returns nil, failing after d.
func waitFor(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestResponsesMatchSpec runs an origin, a mirror below it and a proxy
// group below the mirror, plus a bare content handler, and validates what
// each endpoint answers against the spec.
func TestResponsesMatchSpec(t *testing.T) {
	t.Parallel()
	lw := testlog.New(t)
	dir := t.TempDir()

	// A published tree.
	tree := filepath.Join(dir, "tree")
	files := map[string]string{
		"security/fix.patch":                 strings.Repeat("patch line\n", 100),
		"software/linux-amd64/1.0/agent.tgz": strings.Repeat("agent bytes ", 200),
	}
	for p, b := range files {
		full := filepath.Join(tree, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rootPath := publishTUF(t, tree, filepath.Join(dir, "tufkeys"))
	const token = "openapi-test-token-0123456789"
	tokenFile := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// The tree key every node holds: reports and relay streams need it.
	treeKeyFile, err := treeauth.GenerateKey(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	treeKey, err := treeauth.LoadKey(treeKeyFile)
	if err != nil {
		t.Fatal(err)
	}

	// origin ← mirror (group hq, admin token) ← proxy (group branch, gossip).
	cfg := node.DefaultConfig()
	cfg.TreeKeyFile = treeKeyFile
	cfg.Node, cfg.Group, cfg.Mode, cfg.Root = "origin-1", "origin", node.ModeOrigin, tree
	cfg.DataDir, cfg.Admin, cfg.Gossip = filepath.Join(dir, "origin"), "127.0.0.1:0", ""
	on := startNode(t, cfg, lw)

	cfg = node.DefaultConfig()
	cfg.TreeKeyFile = treeKeyFile
	cfg.Node, cfg.Group, cfg.Mode, cfg.Root = "hq-1", "hq", node.ModeMirror, rootPath
	cfg.DataDir, cfg.Admin, cfg.AdminTokenFile, cfg.Gossip = filepath.Join(dir, "mirror"), "127.0.0.1:0", tokenFile, ""
	cfg.Upstream.Upstreams = []string{"http://" + on.ContentAddr()}
	cfg.ReportInterval = 200 * time.Millisecond
	mn := startNode(t, cfg, lw)

	cfg = node.DefaultConfig()
	cfg.TreeKeyFile = treeKeyFile
	cfg.Node, cfg.Group, cfg.Mode = "branch-1", "branch", node.ModeProxy
	cfg.DataDir, cfg.Admin, cfg.Gossip = filepath.Join(dir, "proxy"), "127.0.0.1:0", "127.0.0.1:0"
	cfg.Upstream.Upstreams = []string{"http://" + mn.ContentAddr()}
	cfg.ReportInterval = 200 * time.Millisecond
	pn := startNode(t, cfg, lw)

	// A content handler without catalog, events, reports or blobs, and
	// not ready: the 404s and 503s of what a node does not serve.
	src, err := origin.New(tree, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	bare := httptest.NewServer(server.NewContent(server.ContentConfig{Source: src,
		Ready:  func() error { return errors.New("disk does not take writes") },
		Relays: func() wire.Relays { return wire.Relays{Group: "bare", Relays: []wire.Relay{}} }}, zerolog.Nop()))
	t.Cleanup(bare.Close)

	O := newTarget(t, "origin", "http://"+on.ContentAddr(), "http://"+on.AdminAddr(), "")
	M := newTarget(t, "mirror", "http://"+mn.ContentAddr(), "http://"+mn.AdminAddr(), token)
	P := newTarget(t, "proxy", "http://"+pn.ContentAddr(), "http://"+pn.AdminAddr(), "")
	B := newTarget(t, "bare", bare.URL, "", "")

	// The profiler's index is HTML, which openapi3filter has no decoder
	// for; it is text.
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)

	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	contentRoutes, adminRoutes := codeRouters(t)
	doc := loadSpec(t)
	c := &checker{client: &http.Client{Transport: tr, Timeout: 10 * time.Second}, content: contentRoutes, admin: adminRoutes,
		errSch: doc.Components.Schemas["Error"].Value}

	// The mirror serves once its first generation is live.
	waitFor(t, 10*time.Second, "mirror ready", func() error {
		resp, err := c.client.Get(M.content + "/-/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})

	fix := digest.FromBytes([]byte(files["security/fix.patch"]))
	agentPath := "/software/linux-amd64/1.0/agent.tgz"
	jsonCT := map[string]string{"Content-Type": "application/json"}
	// signed is a report's headers for tg, signed with the tree key as
	// lab/lab-1.
	signed := func(tg *target, body string) map[string]string {
		req, _ := http.NewRequest(http.MethodPost, tg.content+"/-/report", nil)
		(&treeauth.Signer{Key: treeKey, Group: "lab", Node: "lab-1"}).Sign(req, "/-/report", []byte(body))
		return map[string]string{"Content-Type": "application/json", wire.AuthHeader: req.Header.Get(wire.AuthHeader)}
	}
	goodReport := `{"group":"lab","node":"lab-1","mode":"proxy",
			"url":"http://lab-1:20080","generation":1,"ready":true,"upstream":["http://origin:20080"],
			"cache":{"objects":2,"bytes":10,"hits":3,"misses":2,"upstream_bytes":10},"agents":2,"sent":"2026-01-02T03:04:05Z",
			"children":[{"group":"lab-sub","node":"sub-1","mode":"proxy","generation":0,"ready":false,"problem":"no generation yet","agents":0,"sent":"2026-01-02T03:04:05Z"}]}`
	loopReport := `{"group":"lab","node":"lab-1","children":[{"group":"branch","node":"other"}]}`
	otherReport := `{"group":"lab","node":"lab-2"}`

	// Content port.
	for _, cl := range []call{
		{t: O, method: "GET", path: "/-/healthz", want: 200},
		{t: O, method: "HEAD", path: "/-/healthz", want: 200},
		{t: M, method: "GET", path: "/-/readyz", want: 200},
		{t: M, method: "HEAD", path: "/-/readyz", want: 200},
		{t: B, method: "GET", path: "/-/readyz", want: 503},
		{t: B, method: "HEAD", path: "/-/readyz", want: 503},

		{t: O, method: "GET", path: "/-/tuf/timestamp.json", want: 200},
		{t: O, method: "GET", path: "/-/tuf/1.root.json", want: 200},
		{t: M, method: "GET", path: "/-/tuf/timestamp.json", want: 200},
		{t: M, method: "GET", path: "/-/tuf/1.root.json", want: 200},
		{t: M, method: "GET", path: "/-/tuf/1.snapshot.json", want: 200},
		{t: P, method: "GET", path: "/-/tuf/timestamp.json", want: 200},
		{t: P, method: "GET", path: "/-/tuf/1.snapshot.json", want: 200},
		{t: M, method: "HEAD", path: "/-/tuf/timestamp.json", want: 200},
		{t: M, method: "GET", path: "/-/tuf/timestamp.json", header: map[string]string{"Range": "bytes=0-16"}, want: 206},
		{t: M, method: "GET", path: "/-/tuf/timestamp.json", header: map[string]string{wire.GenerationHeader: "99"}, want: 503},
		{t: M, method: "GET", path: "/-/tuf/99.root.json", want: 404},
		{t: M, method: "GET", path: "/-/tuf/root.json", want: 404, badRequest: true},
		{t: B, method: "GET", path: "/-/tuf/timestamp.json", want: 404},

		{t: M, method: "GET", path: "/-/blob/" + fix.Hex(), header: map[string]string{"X-Relay-Blob-Path": "security/fix.patch"}, want: 200},
		{t: M, method: "HEAD", path: "/-/blob/" + fix.Hex(), header: map[string]string{"X-Relay-Blob-Path": "security/fix.patch"}, want: 200},
		{t: M, method: "GET", path: "/-/blob/" + strings.Repeat("ab", 32),
			header: map[string]string{"X-Relay-Blob-Path": "x", "X-Relay-Blob-Stored-Only": "1"}, want: 404},
		{t: M, method: "GET", path: "/-/blob/xyz", header: map[string]string{"X-Relay-Blob-Path": "x"}, want: 400, badRequest: true},
		{t: B, method: "GET", path: "/-/blob/" + fix.Hex(), header: map[string]string{"X-Relay-Blob-Path": "security/fix.patch"}, want: 404},

		{t: O, method: "GET", path: "/-/relays", want: 200},
		{t: M, method: "GET", path: "/-/relays", want: 200},
		{t: P, method: "GET", path: "/-/relays", want: 200},

		{t: B, method: "GET", path: "/-/events", want: 404},
		{t: P, method: "GET", path: "/-/events?generation=soon", want: 400, badRequest: true},
		{t: P, method: "GET", path: "/-/events", header: map[string]string{"X-Relay-Agent": strings.Repeat("a", 129)}, want: 400, badRequest: true},

		{t: O, method: "POST", path: "/-/report", header: signed(O, goodReport), want: 204, body: goodReport},
		{t: O, method: "POST", path: "/-/report", header: signed(O, `{"group":"lab",`), body: `{"group":"lab",`, want: 400, badRequest: true},
		{t: O, method: "POST", path: "/-/report", header: signed(O, `{"group":"lab"}`), body: `{"group":"lab"}`, want: 400, badRequest: true},
		{t: O, method: "POST", path: "/-/report", header: map[string]string{"Content-Type": "text/plain", wire.AuthHeader: signed(O, `{}`)[wire.AuthHeader]},
			body: `{}`, want: 415, badRequest: true},
		{t: P, method: "POST", path: "/-/report", header: signed(P, loopReport), want: 508, body: loopReport},
		{t: O, method: "POST", path: "/-/report", header: jsonCT, body: goodReport, want: 401},
		{t: O, method: "POST", path: "/-/report", header: signed(O, otherReport), body: otherReport, want: 403},
		{t: P, method: "GET", path: "/-/events", header: map[string]string{"X-Relay-Path": "lab", "X-Relay-Node": "lab-1"}, want: 401},
		{t: B, method: "POST", path: "/-/report", header: jsonCT, body: `{"group":"lab","node":"lab-1"}`, want: 404},

		{t: O, method: "GET", path: "/security/fix.patch", want: 200},
		{t: O, method: "HEAD", path: "/security/fix.patch", want: 200},
		{t: M, method: "GET", path: "/security/fix.patch", want: 200},
		{t: P, method: "GET", path: agentPath, want: 200}, // MISS
		{t: P, method: "GET", path: agentPath, want: 200}, // HIT
		{t: P, method: "HEAD", path: agentPath, want: 200},
		{t: P, method: "GET", path: agentPath, header: map[string]string{"Range": "bytes=10-19"}, want: 206},
		{t: P, method: "GET", path: agentPath, header: map[string]string{"Range": "bytes=100000-"}, want: 416},
		{t: P, method: "GET", path: "/software/none.tgz", want: 404},
		{t: O, method: "GET", path: "/security/%2e%2e/secret", want: 400},
		{t: O, method: "GET", path: "/-%2Ftuf%2Ftimestamp.json", want: 400},
		{t: M, method: "GET", path: "/security/fix.patch", header: map[string]string{wire.GenerationHeader: "99"}, want: 503},
		{t: M, method: "GET", path: "/security/fix.patch", header: map[string]string{wire.GenerationHeader: "latest"}, want: 400, badRequest: true},
		{t: P, method: "GET", path: agentPath, header: map[string]string{"X-Relay-Path": "hq,branch"}, want: 508},
		{t: P, method: "POST", path: wire.OutcomePath, header: jsonCT, body: `{"agent":"agent-1","generation":1,"state":"installed"}`, want: 202},
		{t: P, method: "POST", path: wire.OutcomePath, header: jsonCT, body: `{"agent":"agent-1","generation":1,"state":"done"}`, want: 400, badRequest: true},
		{t: O, method: "GET", path: "/-/nothing", want: 404, unrouted: true},
		{t: O, method: "DELETE", path: "/security/fix.patch", want: 405, unrouted: true},
	} {
		c.do(t, cl)
	}

	// Conditional requests with the validators the relays sent.
	for _, tg := range []*target{O, M, P} {
		path := agentPath
		resp, _ := c.do(t, call{t: tg, method: "GET", path: path, want: 200})
		etag, lm := resp.Header.Get("Etag"), resp.Header.Get("Last-Modified")
		if etag == "" {
			t.Errorf("%s: GET %s without an ETag", tg.name, path)
			continue
		}
		if tg != O && !strings.HasPrefix(etag, `"sha256:`) {
			t.Errorf(`%s: ETag %s, want "sha256:…"`, tg.name, etag)
		}
		c.do(t, call{t: tg, method: "GET", path: path, header: map[string]string{"If-None-Match": etag}, want: 304})
		c.do(t, call{t: tg, method: "HEAD", path: path, header: map[string]string{"If-None-Match": etag}, want: 304})
		c.do(t, call{t: tg, method: "GET", path: path, header: map[string]string{"Range": "bytes=0-9", "If-Range": etag}, want: 206})
		c.do(t, call{t: tg, method: "GET", path: path, header: map[string]string{"Range": "bytes=0-9", "If-Range": `"other"`}, want: 200})
		if lm != "" {
			c.do(t, call{t: tg, method: "GET", path: path, header: map[string]string{"If-Modified-Since": lm}, want: 304})
		}
	}

	// An agent and the child relays hold event streams open while the
	// admin documents are read.
	closeEvents := c.openEvents(t, P, "/-/events?agent=agent-1&generation=1", nil)
	defer closeEvents()
	waitFor(t, 10*time.Second, "the tree reaches the origin", func() error {
		resp, err := c.client.Get(O.admin + "/v1/tree")
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Contains(b, []byte(`"group":"branch"`)) {
			return fmt.Errorf("no branch below the origin yet: %s", b)
		}
		return nil
	})

	// Admin port.
	for _, cl := range []call{
		{t: O, admin: true, method: "GET", path: "/v1/status", want: 200},
		{t: M, admin: true, method: "GET", path: "/v1/status", want: 200},
		{t: P, admin: true, method: "GET", path: "/v1/status", want: 200}, // with loops
		{t: M, admin: true, method: "GET", path: "/v1/status", noToken: true, want: 401},
		{t: M, admin: true, method: "GET", path: "/metrics", noToken: true, want: 401},
		{t: O, admin: true, method: "GET", path: "/v1/members", want: 404},
		{t: P, admin: true, method: "GET", path: "/v1/members", want: 200},
		{t: O, admin: true, method: "GET", path: "/v1/tree", want: 200},
		{t: M, admin: true, method: "GET", path: "/v1/tree", want: 200},
		{t: P, admin: true, method: "GET", path: "/v1/tree", want: 200},
		{t: O, admin: true, method: "GET", path: "/v1/agents", want: 200},
		{t: P, admin: true, method: "GET", path: "/v1/agents", want: 200},
		{t: O, admin: true, method: "GET", path: "/v1/compliance", want: 200},
		{t: P, admin: true, method: "GET", path: "/v1/compliance", want: 200},
		{t: M, admin: true, method: "GET", path: "/v1/sync", want: 200},
		{t: M, admin: true, method: "POST", path: "/v1/sync", want: 202},
		{t: O, admin: true, method: "GET", path: "/v1/sync", want: 404},
		{t: P, admin: true, method: "POST", path: "/v1/sync", want: 404},
		{t: M, admin: true, method: "GET", path: "/metrics", want: 200},
		{t: P, admin: true, method: "GET", path: "/metrics", want: 200},
		{t: O, admin: true, method: "GET", path: "/debug/pprof/", want: 200},
		{t: O, admin: true, method: "GET", path: "/debug/pprof/heap?debug=1", want: 200},
		{t: O, admin: true, method: "GET", path: "/debug/pprof/goroutine", want: 200},
		{t: O, admin: true, method: "GET", path: "/debug/pprof/cmdline", want: 404},
		{t: O, admin: true, method: "GET", path: "/debug/pprof/profile?seconds=1", want: 200},
		{t: O, admin: true, method: "GET", path: "/debug/pprof/trace?seconds=0.05", want: 200},
		{t: P, admin: true, method: "GET", path: "/v1/cache", want: 200},
		{t: P, admin: true, method: "GET", path: "/v1/cache?prefix=software/&limit=1&pinned=false", want: 200},
		{t: P, admin: true, method: "GET", path: "/v1/cache?limit=0", want: 400, badRequest: true},
		{t: O, admin: true, method: "GET", path: "/v1/cache", want: 404},
		{t: P, admin: true, method: "GET", path: "/v1/cache/stats", want: 200},
		{t: P, admin: true, method: "POST", path: "/v1/cache/pin", header: jsonCT, body: `{"paths":["` + agentPath[1:] + `","software/none.tgz"]}`, want: 200},
		{t: P, admin: true, method: "POST", path: "/v1/cache/pin", header: jsonCT, body: `{"paths":[]}`, want: 400, badRequest: true},
		{t: P, admin: true, method: "POST", path: "/v1/cache/pin", header: jsonCT, body: `{"paths":["a"],"all":true}`, want: 400, badRequest: true},
		{t: P, admin: true, method: "POST", path: "/v1/cache/prefetch", header: jsonCT, body: `{"paths":["security/fix.patch"]}`, want: 202},
		{t: P, admin: true, method: "GET", path: "/v1/cache/prefetch", want: 200},
		{t: M, admin: true, method: "POST", path: "/v1/cache/prefetch", header: jsonCT, body: `{"paths":["security/fix.patch"]}`, want: 404},
		{t: M, admin: true, method: "DELETE", path: "/v1/cache/security/fix.patch", want: 409},
		{t: P, admin: true, method: "DELETE", path: "/v1/cache/software/never-asked.tgz", want: 404}, // none.tgz: its 404 is stored
		{t: P, admin: true, method: "DELETE", path: "/v1/cache" + agentPath, want: 204},
		{t: O, admin: true, method: "GET", path: "/v1/rollout", want: 200},
		{t: M, admin: true, method: "GET", path: "/v1/rollout", want: 200},
		{t: P, admin: true, method: "POST", path: "/v1/rollout/promote", header: jsonCT, body: `{"ring":"early"}`, want: 409},
		{t: P, admin: true, method: "POST", path: "/v1/rollout/promote", header: jsonCT, body: `{"rings":[]}`, want: 400, badRequest: true},
		{t: P, admin: true, method: "POST", path: "/v1/rollout/halt", header: jsonCT, body: `{"reason":"bad driver"}`, want: 409},
		{t: P, admin: true, method: "POST", path: "/v1/rollout/resume", want: 409},
		{t: O, admin: true, method: "GET", path: "/v1/nothing", want: 404, unrouted: true},
	} {
		c.do(t, cl)
	}

	// The documents hold what the checks above were meant to exercise.
	for _, d := range []struct {
		tg   *target
		path string
		want string
	}{
		{P, "/v1/status", `"loops":{`},
		{P, "/v1/agents", `"id":"agent-1"`},
		{O, "/v1/agents", `"relay":true`},
		{O, "/v1/tree", `"age":`},
		{P, "/v1/compliance", `"on_target":1`},
		{M, "/v1/status", `"sync":{`},
	} {
		_, body := c.do(t, call{t: d.tg, admin: true, method: "GET", path: d.path, want: 200})
		if !bytes.Contains(body, []byte(d.want)) {
			t.Errorf("%s %s: no %s in %s", d.tg.name, d.path, d.want, body)
		}
	}
}

// publishTUF makes a key per top-level role in keys, the TUF repository of
// tree and its generation 1, and returns the path of 1.root.json.
func publishTUF(t *testing.T, tree, keys string) string {
	t.Helper()
	roles, ring := tuftest.Keys(t, keys)
	if _, err := tufrepo.Init(tree, ring, roles, tufrepo.Options{Workers: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := tufrepo.Publish(context.Background(), tree, ring, tufrepo.Options{Workers: 1}); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(tree, "-", "tuf", "1.root.json")
}
