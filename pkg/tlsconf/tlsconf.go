package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
)

// Files names a node's TLS material. Empty fields are unused.
type Files struct {
	// Cert and Key are the node's certificate chain and private key
	// (PEM): served on the TLS content port, presented to parents that
	// ask for a client certificate.
	Cert, Key string
	// UpstreamCA verifies the certificates of upstreams and peers (PEM,
	// one or more CAs). Empty: the system pool.
	UpstreamCA string
	// PeerCA, when set, makes the TLS content port require a client
	// certificate signed by one of these CAs: only your relays pull.
	PeerCA string
}

// Material is the loaded TLS material; Reload replaces it whole. It is
// safe for concurrent use.
type Material struct {
	files Files

	mu       sync.RWMutex
	cert     *tls.Certificate
	upstream *x509.CertPool // nil: system pool
	server   *tls.Config    // what the TLS port hands every handshake; nil without a certificate
}

// Load reads the files.
func Load(f Files) (*Material, error) {
	if (f.Cert == "") != (f.Key == "") {
		return nil, errors.New("tlsconf: a certificate needs its key and a key its certificate (--tls-cert and --tls-key)")
	}
	if f.PeerCA != "" && f.Cert == "" {
		return nil, errors.New("tlsconf: --peer-ca protects the TLS content port: set --tls-cert and --tls-key too")
	}
	m := &Material{files: f}
	return m, m.Reload()
}

// Reload reads the files again; on error the material in use stays.
func (m *Material) Reload() error {
	var cert *tls.Certificate
	if m.files.Cert != "" {
		c, err := tls.LoadX509KeyPair(m.files.Cert, m.files.Key)
		if err != nil {
			return fmt.Errorf("tlsconf: certificate %s: %w", m.files.Cert, err)
		}
		cert = &c
	}
	upstream, err := loadPool(m.files.UpstreamCA)
	if err != nil {
		return err
	}
	peers, err := loadPool(m.files.PeerCA)
	if err != nil {
		return err
	}
	var server *tls.Config
	if cert != nil {
		server = &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: nextProtos, Certificates: []tls.Certificate{*cert}}
		if peers != nil {
			server.ClientAuth, server.ClientCAs = tls.RequireAndVerifyClientCert, peers
		}
	}
	m.mu.Lock()
	m.cert, m.upstream, m.server = cert, upstream, server
	m.mu.Unlock()
	return nil
}

func loadPool(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: CA file: %w", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("tlsconf: %s holds no PEM certificate", file)
	}
	return p, nil
}

// Serving reports whether there is a certificate to serve.
func (m *Material) Serving() bool { return m.files.Cert != "" }

// ServerConfig is the TLS content port's configuration: the current
// certificate for every handshake and, with a peer CA, a client
// certificate required.
func (m *Material) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: nextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m.mu.RLock()
			defer m.mu.RUnlock()
			return m.server, nil // built by Reload, shared by every handshake
		},
	}
}

// nextProtos are the protocols the TLS port offers.
var nextProtos = []string{"h2", "http/1.1"}

// ClientConfig is for dialing upstreams and peers: their certificates are
// checked against the upstream CA (or the system pool), and the node's
// certificate is presented when asked for. The pool is the one loaded when
// ClientConfig is called: connections opened after a reload see a new
// certificate, a new CA pool takes a restart.
func (m *Material) ClientConfig() *tls.Config {
	m.mu.RLock()
	pool := m.upstream
	m.mu.RUnlock()
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			m.mu.RLock()
			defer m.mu.RUnlock()
			if m.cert == nil {
				return &tls.Certificate{}, nil // none: the server decides
			}
			return m.cert, nil
		},
	}
}
