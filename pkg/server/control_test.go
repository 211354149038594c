package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/events"
	"github.com/relayd/relayd/pkg/tlsconf"
	"github.com/relayd/relayd/pkg/treeauth"
	"github.com/relayd/relayd/pkg/wire"
)

// countingBody counts what the handler read of a request body.
type countingBody struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
func (c *countingBody) Close() error { return nil }

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct{ Code string }
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e.Code
}

// TestReportCredential: a report without the tree credential is refused
// before a byte of its body is read; one with a credential that does not
// hold is refused, and none of them is kept.
func TestReportCredential(t *testing.T) {
	t.Parallel()
	rs := newRelayServer(t)
	h := rs.Config.Handler
	good := []byte(`{"group":"branch-a","node":"a-1","generation":999999,"agents":1000000}`)
	huge := bytes.Repeat([]byte(" "), 8<<20)
	other, _ := treeauth.NewKey(bytes.Repeat([]byte{8}, treeauth.KeySize))
	for _, tc := range []struct {
		name   string
		body   []byte
		sign   func(*http.Request)
		status int
		code   string
		unread bool
	}{
		{name: "no credential", body: huge, sign: func(*http.Request) {}, status: 401, code: "tree_auth_required", unread: true},
		{name: "other tree's key", body: good, status: 403, code: "tree_auth_invalid", unread: true,
			sign: func(r *http.Request) {
				(&treeauth.Signer{Key: other, Group: "branch-a", Node: "a-1"}).Sign(r, "/-/report", good)
			}},
		{name: "stale", body: good, status: 403, code: "tree_auth_invalid", unread: true,
			sign: func(r *http.Request) {
				r.Header.Set(wire.AuthHeader, testTreeKey.Sign(treeauth.Claim{Method: "POST", Path: "/-/report",
					Time: time.Now().Add(-6 * time.Minute), Group: "branch-a", Node: "a-1", Body: digestOf(good), Audience: r.Host}))
			}},
		{name: "signed for another body", body: good, status: 403, code: "tree_auth_invalid",
			sign: func(r *http.Request) {
				sign(r, "/-/report", "branch-a", "a-1", []byte(`{"group":"branch-a","node":"a-1"}`))
			}},
		{name: "signed for the events endpoint", body: good, status: 403, code: "tree_auth_invalid", unread: true,
			sign: func(r *http.Request) { sign(r, "/-/events", "branch-a", "a-1", good) }},
		{name: "signed without a body digest", body: good, status: 403, code: "tree_auth_invalid", unread: true,
			sign: func(r *http.Request) { sign(r, "/-/report", "branch-a", "a-1", nil) }},
		{name: "someone else's report", body: good, status: 403, code: "tree_auth_invalid",
			sign: func(r *http.Request) { sign(r, "/-/report", "branch-b", "b-1", good) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := &countingBody{r: bytes.NewReader(tc.body)}
			req := httptest.NewRequest(http.MethodPost, "/-/report", body)
			req.Header.Set("Content-Type", "application/json")
			tc.sign(req)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tc.status || errorCode(t, w.Body.Bytes()) != tc.code {
				t.Fatalf("status %d %s, want %d %s", w.Code, w.Body.Bytes(), tc.status, tc.code)
			}
			if tc.unread && body.n.Load() != 0 {
				t.Errorf("read %d bytes of a refused report's body", body.n.Load())
			}
		})
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.reports) != 0 {
		t.Fatalf("kept %+v", rs.reports)
	}
}

func digestOf(b []byte) digest.Digest { return digest.FromBytes(b) }

// TestNoCredentialConfigured: a relay without tree key or peer CA refuses
// every report and relay claim with 401, and still serves agents.
func TestNoCredentialConfigured(t *testing.T) {
	t.Parallel()
	hub := events.NewHub()
	closing := make(chan struct{})
	defer close(closing)
	c := NewContent(ContentConfig{Relays: func() wire.Relays { return wire.Relays{} }, Group: "hq", Events: hub, Closing: closing,
		Report: func(wire.Report) error { t.Error("a report was taken"); return nil }}, zerolog.New(zerolog.NewTestWriter(t)))
	body := []byte(`{"group":"b","node":"n"}`)
	req := httptest.NewRequest(http.MethodPost, "/-/report", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	sign(req, "/-/report", "b", "n", body)
	w := httptest.NewRecorder()
	c.ServeHTTP(w, req)
	if w.Code != 401 || errorCode(t, w.Body.Bytes()) != "tree_auth_required" || w.Header().Get("WWW-Authenticate") == "" {
		t.Fatalf("report: %d %s %v", w.Code, w.Body.Bytes(), w.Header())
	}
	req = httptest.NewRequest(http.MethodGet, "/-/events", nil)
	req.Header.Set(wire.PathHeader, "b")
	req.Header.Set(wire.NodeHeader, "n")
	sign(req, "/-/events", "b", "n", nil)
	w = httptest.NewRecorder()
	c.ServeHTTP(w, req)
	if w.Code != 401 {
		t.Fatalf("relay stream: %d %s", w.Code, w.Body.Bytes())
	}
}

// TestRelayClaimCannotKick: a stream claiming a child relay's identity
// without the credential is refused, and the real child keeps its stream.
func TestRelayClaimCannotKick(t *testing.T) {
	t.Parallel()
	rs := newRelayServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func(signAs string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rs.URL+"/-/events", nil)
		req.Header.Set(wire.PathHeader, "branch-a")
		req.Header.Set(wire.NodeHeader, "a-1")
		switch signAs {
		case "a-1":
			sign(req, "/-/events", "branch-a", "a-1", nil)
		case "a-2":
			sign(req, "/-/events", "branch-a", "a-2", nil)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	real := open("a-1")
	defer real.Body.Close()
	waitFor(t, func() bool { _, r := rs.hub.Count(); return r == 1 }, "the real child's stream")
	r := events.NewReader(real.Body)
	for _, as := range []string{"", "a-2"} {
		fake := open(as)
		b, _ := io.ReadAll(fake.Body)
		fake.Body.Close()
		want := map[string]int{"": 401, "a-2": 403}[as]
		if fake.StatusCode != want {
			t.Fatalf("a claim signed as %q: status %d %s, want %d", as, fake.StatusCode, b, want)
		}
	}
	if agents, relays := rs.hub.Count(); relays != 1 || agents != 0 {
		t.Fatalf("agents %d relays %d after the fakes, want the real child alone", agents, relays)
	}
	// The real child still gets pushes.
	rs.hub.Publish(wire.KindCatalog, []byte(`{"generation":9}`))
	for {
		ev, err := r.Next()
		if err != nil {
			t.Fatalf("the real child's stream: %v", err)
		}
		if strings.Contains(string(ev.Data), `"generation":9`) {
			break
		}
	}
}

// TestReportDecodesBounded: two reports decode at once; more wait for a
// turn (and are taken once one is free), and beyond the waiting room a
// report gets 503 busy with Retry-After at once.
func TestReportDecodesBounded(t *testing.T) {
	t.Parallel()
	rs := newRelayServer(t)
	body := []byte(`{"group":"branch-a","node":"a-1"}`)
	c := rs.Config.Handler.(*Content)
	var writers []*io.PipeWriter
	done := make(chan int, maxReportDecodes+maxReportWaiting)
	post := func(r io.Reader) {
		req, _ := http.NewRequest(http.MethodPost, rs.URL+"/-/report", r)
		req.Header.Set("Content-Type", "application/json")
		sign(req, "/-/report", "branch-a", "a-1", body)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
	}
	for range maxReportDecodes {
		pr, pw := io.Pipe()
		writers = append(writers, pw)
		post(pr)
		pw.Write(body[:5]) // the decode starts and waits for the rest
	}
	waitFor(t, func() bool { return len(c.reportSlots) == maxReportDecodes }, "two decodes in progress")
	for range maxReportWaiting {
		post(bytes.NewReader(body))
	}
	waitFor(t, func() bool { return c.reporting.Load() == maxReportDecodes+maxReportWaiting }, "the waiting room full")
	req, _ := http.NewRequest(http.MethodPost, rs.URL+"/-/report", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	sign(req, "/-/report", "branch-a", "a-1", body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || errorCode(t, b) != "busy" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("report past the waiting room: %d %s %v", resp.StatusCode, b, resp.Header)
	}
	for _, pw := range writers {
		pw.Write(body[5:])
		pw.Close()
	}
	for range maxReportDecodes + maxReportWaiting {
		if s := <-done; s != http.StatusNoContent {
			t.Errorf("a held or waiting report got %d", s)
		}
	}
}

// TestCertificateIsProof: over mutual TLS (a peer CA), a verified client
// certificate naming the node proves a relay stream and a report without
// the tree key; a certificate of another node does not.
func TestCertificateIsProof(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, n := range []string{"hq", "a-1"} {
		if err := tlsconf.Issue(dir, n, []string{"127.0.0.1"}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	hub := events.NewHub()
	closing := make(chan struct{})
	defer close(closing)
	var kept atomic.Int32
	c := NewContent(ContentConfig{Relays: func() wire.Relays { return wire.Relays{} }, Group: "hq", Events: hub, Closing: closing,
		Heartbeat: 50 * time.Millisecond, TreeAuth: &treeauth.Verifier{Certificates: true},
		Report: func(wire.Report) error { kept.Add(1); return nil }}, zerolog.New(zerolog.NewTestWriter(t)))
	m, err := tlsconf.Load(tlsconf.Files{Cert: filepath.Join(dir, "hq.pem"), Key: filepath.Join(dir, "hq.key"),
		UpstreamCA: filepath.Join(dir, tlsconf.CAFile), PeerCA: filepath.Join(dir, tlsconf.CAFile)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(c)
	srv.TLS = m.ServerConfig()
	srv.StartTLS()
	defer srv.Close()
	cm, err := tlsconf.Load(tlsconf.Files{Cert: filepath.Join(dir, "a-1.pem"), Key: filepath.Join(dir, "a-1.key"),
		UpstreamCA: filepath.Join(dir, tlsconf.CAFile)})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: cm.ClientConfig()}}
	defer client.CloseIdleConnections()

	body := []byte(`{"group":"branch-a","node":"a-1"}`)
	for node, want := range map[string]int{"a-1": 204, "a-2": 403} {
		b := bytes.Replace(body, []byte("a-1"), []byte(node), 1)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/-/report", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("report of %s over a-1's certificate: %d, want %d", node, resp.StatusCode, want)
		}
	}
	if kept.Load() != 1 {
		t.Errorf("kept %d reports, want 1", kept.Load())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for node, want := range map[string]int{"a-2": 403, "a-1": 200} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/-/events", nil)
		req.Header.Set(wire.PathHeader, "branch-a")
		req.Header.Set(wire.NodeHeader, node)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != want {
			t.Fatalf("stream as %s over a-1's certificate: %d, want %d", node, resp.StatusCode, want)
		}
		if want != 200 {
			resp.Body.Close()
			continue
		}
		defer resp.Body.Close()
	}
	waitFor(t, func() bool { _, r := hub.Count(); return r == 1 }, "a-1's relay stream")
}

// TestRefusalsLogOncePerInterval: a flood of refused reports is one log
// line, not one per request.
func TestRefusalsLogOncePerInterval(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	c := NewContent(ContentConfig{Relays: func() wire.Relays { return wire.Relays{} }, Group: "hq",
		Report: func(wire.Report) error { return nil }}, zerolog.New(&buf))
	for range 20 {
		req := httptest.NewRequest(http.MethodPost, "/-/report", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		c.ServeHTTP(w, req)
		if w.Code != 401 {
			t.Fatalf("status %d", w.Code)
		}
	}
	if n := strings.Count(buf.String(), "refused a report or child-relay stream"); n != 1 {
		t.Fatalf("%d refusal lines for 20 refused reports, want 1:\n%s", n, buf.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
