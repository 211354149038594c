package treeauth

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/wire"
)

func testKey(t *testing.T, fill byte) *Key {
	t.Helper()
	k, err := NewKey(bytes.Repeat([]byte{fill}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var now = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func signedReport(k *Key, body []byte, at time.Time, group, node string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/-/report", bytes.NewReader(body))
	s := Signer{Key: k, Group: group, Node: node, Clock: clock.NewFake(at)}
	s.Sign(r, "/-/report", body)
	return r
}

func TestSignVerify(t *testing.T) {
	t.Parallel()
	k := testKey(t, 1)
	v := &Verifier{Key: k, Clock: clock.NewFake(now)}
	body := []byte(`{"group":"branch, a","node":"a 1"}`)
	r := signedReport(k, body, now.Add(-4*time.Minute), "branch, a", "a 1")
	id, err := v.Verify(r, "/-/report")
	if err != nil {
		t.Fatal(err)
	}
	if !id.Is("branch, a", "a 1") || id.Is("branch, a", "a 2") || id.Is("branch", "a 1") || id.Body != digest.FromBytes(body) {
		t.Fatalf("identity %+v", id)
	}
	got, err := io.ReadAll(CheckBody(r.Body, id.Body))
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("body %q, %v", got, err)
	}
	// A stream: no body, no b= field.
	g := httptest.NewRequest(http.MethodGet, "/-/events", nil)
	(&Signer{Key: k, Group: "g", Node: "n", Clock: clock.NewFake(now)}).Sign(g, "/-/events", nil)
	if strings.Contains(g.Header.Get(wire.AuthHeader), "b=") {
		t.Errorf("stream header %q has a body digest", g.Header.Get(wire.AuthHeader))
	}
	if id, err := v.Verify(g, "/-/events"); err != nil || !id.Is("g", "n") || !id.Body.IsZero() {
		t.Fatalf("stream: %+v %v", id, err)
	}
}

// TestTamper changes each signed field in turn: every change is refused.
func TestTamper(t *testing.T) {
	t.Parallel()
	k := testKey(t, 1)
	v := &Verifier{Key: k, Clock: clock.NewFake(now)}
	body := []byte(`{"group":"g","node":"n"}`)
	good := signedReport(k, body, now, "g", "n").Header.Get(wire.AuthHeader)
	replace := func(field, val string) string {
		var out []string
		for kv := range strings.SplitSeq(strings.TrimPrefix(good, "v1 "), ",") {
			if strings.HasPrefix(kv, field+"=") {
				kv = field + "=" + val
			}
			out = append(out, kv)
		}
		return "v1 " + strings.Join(out, ",")
	}
	for _, tc := range []struct {
		name, header, method, endpoint string
		key                            *Key
	}{
		{name: "time", header: replace("t", "1796644801")},
		{name: "group", header: replace("g", "h")},
		{name: "node", header: replace("n", "m")},
		{name: "body digest", header: replace("b", digest.FromBytes([]byte("other")).Hex())},
		{name: "mac", header: replace("m", "AAAA")},
		{name: "method", header: good, method: http.MethodPut},
		{name: "endpoint", header: good, endpoint: "/-/events"},
		{name: "other key", header: good, key: testKey(t, 2)},
		{name: "version", header: "v2" + strings.TrimPrefix(good, "v1")},
		{name: "unknown field", header: good + ",x=1"},
		{name: "duplicate field", header: good + ",g=g"},
		{name: "empty", header: "v1 "},
		{name: "huge", header: good + strings.Repeat("a", 2000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method, endpoint, vv := http.MethodPost, "/-/report", v
			if tc.method != "" {
				method = tc.method
			}
			if tc.endpoint != "" {
				endpoint = tc.endpoint
			}
			if tc.key != nil {
				vv = &Verifier{Key: tc.key, Clock: clock.NewFake(now)}
			}
			r := httptest.NewRequest(method, "/-/report", bytes.NewReader(body))
			r.Header.Set(wire.AuthHeader, tc.header)
			if _, err := vv.Verify(r, endpoint); !errors.Is(err, ErrInvalid) {
				t.Fatalf("header %q: %v, want ErrInvalid", tc.header, err)
			}
		})
	}
	// The body itself changed: the header holds, the body check fails at
	// the end.
	r := signedReport(k, body, now, "g", "n")
	id, err := v.Verify(r, "/-/report")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(CheckBody(strings.NewReader(`{"group":"g","node":"N"}`), id.Body)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("tampered body: %v, want ErrInvalid", err)
	}
}

func TestStaleTime(t *testing.T) {
	t.Parallel()
	k := testKey(t, 1)
	v := &Verifier{Key: k, Clock: clock.NewFake(now)}
	for _, d := range []time.Duration{-MaxSkew - time.Second, MaxSkew + time.Second, -24 * time.Hour} {
		r := signedReport(k, []byte("{}"), now.Add(d), "g", "n")
		if _, err := v.Verify(r, "/-/report"); !errors.Is(err, ErrInvalid) {
			t.Errorf("signed %s away: %v, want ErrInvalid", d, err)
		}
	}
	for _, d := range []time.Duration{-MaxSkew + time.Second, MaxSkew - time.Second} {
		r := signedReport(k, []byte("{}"), now.Add(d), "g", "n")
		if _, err := v.Verify(r, "/-/report"); err != nil {
			t.Errorf("signed %s away: %v", d, err)
		}
	}
}

func TestRequired(t *testing.T) {
	t.Parallel()
	k := testKey(t, 1)
	plain := httptest.NewRequest(http.MethodPost, "/-/report", nil)
	signed := signedReport(k, []byte("{}"), time.Now(), "g", "n")
	for name, tc := range map[string]struct {
		v *Verifier
		r *http.Request
	}{
		"no credential configured":      {v: &Verifier{}, r: signed},
		"nil verifier":                  {v: nil, r: signed},
		"no header":                     {v: &Verifier{Key: k}, r: plain},
		"certificates, none presented":  {v: &Verifier{Certificates: true}, r: plain},
		"signed, receiver without key":  {v: &Verifier{Certificates: true}, r: signed},
		"certificates off, cert is ign": {v: &Verifier{Key: k}, r: withCert(plain, "n")},
	} {
		if _, err := tc.v.Verify(tc.r, "/-/report"); !errors.Is(err, ErrRequired) {
			t.Errorf("%s: %v, want ErrRequired", name, err)
		}
	}
}

func withCert(r *http.Request, cn string, dns ...string) *http.Request {
	r = r.Clone(r.Context())
	c := &x509.Certificate{Subject: pkix.Name{CommonName: cn}, DNSNames: dns}
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}, VerifiedChains: [][]*x509.Certificate{{c}}}
	return r
}

func TestCertificate(t *testing.T) {
	t.Parallel()
	v := &Verifier{Certificates: true}
	id, err := v.Verify(withCert(httptest.NewRequest(http.MethodGet, "/-/events", nil), "a-1", "a-1.branch.example"), "/-/events")
	if err != nil {
		t.Fatal(err)
	}
	if !id.Is("branch-a", "a-1") || !id.Is("any", "a-1.branch.example") || id.Is("branch-a", "a-2") || id.Is("branch-a", "") {
		t.Fatalf("identity %+v", id)
	}
	// Presented but not verified (no peer CA): no proof.
	r := httptest.NewRequest(http.MethodGet, "/-/events", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Subject: pkix.Name{CommonName: "a-1"}}}}
	if _, err := v.Verify(r, "/-/events"); !errors.Is(err, ErrRequired) {
		t.Fatalf("unverified certificate: %v", err)
	}
}

func TestKeyFile(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "keys")
	path, err := GenerateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v, want mode 0600", path, st.Mode(), err)
	}
	if _, err := LoadKey(path); err != nil {
		t.Fatal(err)
	}
	if _, err := GenerateKey(dir); err == nil {
		t.Fatal("GenerateKey overwrote a key")
	}
	bad := filepath.Join(dir, "short.key")
	os.WriteFile(bad, []byte("c2hvcnQ=\n"), 0o600)
	if _, err := LoadKey(bad); err == nil {
		t.Fatal("a 5-byte key loaded")
	}
}

// TestConstantTimeCompare: the MAC is compared with hmac.Equal, and no
// bytes.Equal or == on byte strings sits in the package.
func TestConstantTimeCompare(t *testing.T) {
	t.Parallel()
	f, err := parser.ParseFile(token.NewFileSet(), "treeauth.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if x, ok := sel.X.(*ast.Ident); ok {
				calls[x.Name+"."+sel.Sel.Name]++
			}
		}
		return true
	})
	if calls["hmac.Equal"] != 1 || calls["bytes.Equal"] != 0 || calls["subtle.ConstantTimeCompare"] != 0 {
		t.Fatalf("comparisons in treeauth.go: %v; want exactly one hmac.Equal", calls)
	}
}
