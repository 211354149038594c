package tlsconf

import (
	"crypto/tls"
	"net"
	"path/filepath"
	"testing"
	"time"
)

func issue(t *testing.T, dir, name string) Files {
	t.Helper()
	if err := Issue(dir, name, []string{"127.0.0.1", "localhost"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	return Files{Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+".key"), UpstreamCA: filepath.Join(dir, CAFile)}
}

// serve accepts TLS connections with m's server config and completes
// their handshakes.
func serve(t *testing.T, m *Material) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", m.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = c.(*tls.Conn).Handshake()
				_, _ = c.Read(make([]byte, 1)) // until the client closes
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// dial completes a handshake and returns the server certificate's serial.
func dial(addr string, cfg *tls.Config) (string, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	// TLS 1.3 reports a refused client certificate at the first read.
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); err != nil {
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			return "", err
		}
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

func TestMutualTLSAndReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	parentFiles := issue(t, dir, "parent")
	parentFiles.PeerCA = filepath.Join(dir, CAFile)
	parent, err := Load(parentFiles)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, parent)

	child, err := Load(issue(t, dir, "child"))
	if err != nil {
		t.Fatal(err)
	}
	first, err := dial(addr, child.ClientConfig())
	if err != nil {
		t.Fatalf("child with a certificate of the CA: %v", err)
	}
	// Without a client certificate: refused.
	anon, err := Load(Files{UpstreamCA: filepath.Join(dir, CAFile)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(addr, anon.ClientConfig()); err == nil {
		t.Fatal("a client without a certificate was let in")
	}
	// A certificate of another CA: refused.
	other, err := Load(issue(t, t.TempDir(), "stranger"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := other.ClientConfig()
	cfg.RootCAs = child.ClientConfig().RootCAs
	if _, err := dial(addr, cfg); err == nil {
		t.Fatal("a client with a certificate of another CA was let in")
	}
	// A new certificate in the same files, then Reload: new handshakes see it.
	issue(t, dir, "parent")
	if err := parent.Reload(); err != nil {
		t.Fatal(err)
	}
	second, err := dial(addr, child.ClientConfig())
	if err != nil || second == first {
		t.Fatalf("after Reload: serial %s (before %s), %v; want a new certificate", second, first, err)
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := issue(t, dir, "n")
	for name, bad := range map[string]Files{
		"cert without key":  {Cert: f.Cert},
		"peer CA alone":     {PeerCA: f.UpstreamCA},
		"missing cert file": {Cert: filepath.Join(dir, "nope.pem"), Key: f.Key},
		"missing CA file":   {UpstreamCA: f.Key + ".none"},
		"CA holds no cert":  {UpstreamCA: f.Key}, // PEM, but a key
		"key is not a key":  {Cert: f.Cert, Key: f.Cert},
	} {
		if _, err := Load(bad); err == nil {
			t.Errorf("%s: Load accepted it", name)
		}
	}
	m, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	m.files.Cert = filepath.Join(dir, "gone.pem")
	if err := m.Reload(); err == nil {
		t.Fatal("Reload of a missing file succeeded")
	}
	if _, err := dial(serve(t, m), m.ClientConfig()); err != nil {
		t.Fatalf("after a failed Reload the old certificate must stay: %v", err)
	}
}
