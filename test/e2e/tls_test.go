package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMutualTLSBetweenRelays: a parent serves its TLS port only to
// clients with a certificate of the lab CA; a child with one fetches
// through it, a child without one is refused. SIGHUP swaps the parent's
// certificate for new connections while a download in flight carries on.
func TestMutualTLSBetweenRelays(t *testing.T) {
	t.Parallel()
	certs := t.TempDir()
	if out, stderr, err := runRelayd(t, 30*time.Second, "certs", "--out", certs, "--host", "127.0.0.1", "parent", "child"); err != nil {
		t.Fatalf("relayd certs: %v\n%s%s", err, out, stderr)
	}
	pem := func(name string) string { return filepath.Join(certs, name) }

	origin := startOrigin(t)
	data := makeData(77, 24<<20)
	obj := newObject(data, "max-age=3600")
	origin.set("/pkg/small.bin", newObject(makeData(78, 4096), "max-age=3600"))
	// The large object trickles, so a download is in flight across SIGHUP.
	obj.chunk, obj.delay = 256<<10, 20*time.Millisecond
	origin.set("/pkg/large.bin", obj)
	parent := startRelayd(t, "--mode", "proxy", "--group", "hq", "--upstream", origin.URL, "--data-dir", t.TempDir(),
		"--tls-listen", "127.0.0.1:0", "--tls-cert", pem("parent.pem"), "--tls-key", pem("parent.key"), "--peer-ca", pem("ca.pem"))
	parentTLS := "https://" + parent.WaitLogAddr(t, "content-tls listening")

	child := startRelayd(t, "--mode", "proxy", "--group", "branch", "--upstream", parentTLS, "--data-dir", t.TempDir(),
		"--upstream-ca", pem("ca.pem"), "--tls-cert", pem("child.pem"), "--tls-key", pem("child.key"), "--tls-listen", "127.0.0.1:0")
	c := newClient()
	wantObject(t, get(t, c, http.MethodGet, child.URL+"/pkg/small.bin"), makeData(78, 4096), "GET via a child with a client certificate")

	anon := startRelayd(t, "--mode", "proxy", "--group", "branch-2", "--upstream", parentTLS, "--data-dir", t.TempDir(),
		"--upstream-ca", pem("ca.pem"))
	r := get(t, c, http.MethodGet, anon.URL+"/pkg/small.bin")
	if r.status != http.StatusBadGateway {
		t.Fatalf("a child without a client certificate got status %d, want 502: %s", r.status, r.body)
	}
	eventually(t, 10*time.Second, "the parent to log the refused handshake", func() error {
		if !strings.Contains(parent.Log(), "TLS handshake error") {
			return errorString("no handshake error logged")
		}
		return nil
	})

	// A client holding the child's certificate, as a child relay would.
	serial := func() string {
		t.Helper()
		cert, err := tls.LoadX509KeyPair(pem("child.pem"), pem("child.key"))
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		ca, _ := os.ReadFile(pem("ca.pem"))
		pool.AppendCertsFromPEM(ca)
		conn, err := tls.Dial("tcp", strings.TrimPrefix(parentTLS, "https://"), &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dl := startStreamGetAt(ctx, c, child.URL+"/pkg/large.bin", 2<<20)
	waitChan(t, dl.reached, 20*time.Second, "2 MiB of the large object through the TLS parent")
	if out, stderr, err := runRelayd(t, 30*time.Second, "certs", "--out", certs, "--host", "127.0.0.1", "parent"); err != nil {
		t.Fatalf("relayd certs: %v\n%s%s", err, out, stderr)
	}
	parent.Signal(syscall.SIGHUP)
	eventually(t, 10*time.Second, "the parent to reload", func() error {
		if !strings.Contains(parent.Log(), "reloaded the TLS certificate") {
			return errorString("not reloaded yet")
		}
		return nil
	})
	if after := serial(); after == before {
		t.Fatalf("after SIGHUP the parent still presents certificate %s", before)
	}
	dl.wantData(t, data, time.Minute, "download in flight across the reload")
	if parent.Exited() {
		t.Fatal("the parent exited on SIGHUP")
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
