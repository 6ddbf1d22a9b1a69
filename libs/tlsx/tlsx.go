// Package tlsx builds the mutual-TLS configs of the internal plane (every gRPC hop) from
// three PEM files — a CA bundle, a certificate and its key — and re-reads them on every
// handshake, so certificates and CAs rotated on disk apply to new connections without a
// restart (connections are long-lived: a request never costs a handshake).
//
// Peers are verified by their spiffe://asf/<service>/<instance> URI SAN (grpcx.Identity),
// not by host name, so the same certificates work on 127.0.0.1, docker DNS names and
// Kubernetes service names.
//
//	b, err := tlsx.Load(cfg.TLS, log)              // nil bundle: plaintext (insecure)
//	srv := grpcx.NewServer("atom", log, reg, tlsx.ServerOption(b))
//	cc, err := grpcx.Dial(addr, tlsx.DialOption(b, "lbclient")) // the peer must be an lbclient
package tlsx

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Config is the internal plane's security part of every service's config; the same keys
// on every service (YAML tls-ca, env ASF_<SVC>_TLS_CA, flag --tls-ca, ...). Insecure is
// the one switch to plaintext and unauthenticated internal connections, gRPC and NATS.
type Config struct {
	CA       string `cfg:"tls-ca" help:"internal TLS: PEM CA bundle that verifies peers on every gRPC hop (may hold old and new CAs during a rotation); re-read on change"`
	Cert     string `cfg:"tls-cert" help:"internal TLS: PEM certificate of this service carrying its spiffe://asf/<service>/<instance> URI SAN; re-read on change"`
	Key      string `cfg:"tls-key" help:"internal TLS: PEM private key of tls-cert; re-read on change"`
	Insecure bool   `cfg:"insecure" help:"allow plaintext and unauthenticated internal connections: gRPC without TLS when tls-ca/tls-cert/tls-key are not set, NATS without credentials (local development only); logged as a warning"`
}

// ErrNotConfigured is returned by Check when neither the TLS files nor insecure are set.
var ErrNotConfigured = errors.New("internal TLS is not configured: set tls-ca, tls-cert and tls-key (PEM files, see asfpki), or insecure: true for plaintext")

// Enabled tells whether any TLS file is set.
func (c Config) Enabled() bool { return c.CA != "" || c.Cert != "" || c.Key != "" }

// Check validates c strictly, as a service process does at start: all three files, or
// none and insecure. With the files set, Insecure does not turn TLS off (it may still
// allow NATS without credentials).
func (c Config) Check() error {
	insecure := c.Insecure
	switch {
	case c.Enabled() && (c.CA == "" || c.Cert == "" || c.Key == ""):
		return fmt.Errorf("internal TLS: tls-ca (%q), tls-cert (%q) and tls-key (%q) must all be set", c.CA, c.Cert, c.Key)
	case !c.Enabled() && !insecure:
		return ErrNotConfigured
	}
	return nil
}

// Bundle is the current certificate, key and CA pool read from a Config's files. Every
// handshake asks it for the current material: the files are read again and, when their
// content changed and parses, replace the material (a half-written pair keeps the old
// one until it is complete). It is safe for concurrent use.
type Bundle struct {
	cfg Config
	log zerolog.Logger

	mu  sync.Mutex // serialises reloads
	cur atomic.Pointer[material]
}

type material struct {
	raw  [3][]byte // CA, cert, key as read
	cert *tls.Certificate
	leaf *x509.Certificate
	pool *x509.CertPool
	id   grpcx.Identity
	srv  *tls.Config // server config of this material
}

// Load reads cfg's files. It returns a nil Bundle (plaintext) when no file is set: with
// insecure it logs a warning; without, it is an embedded server given no TLS (tests) —
// service processes refuse that combination through Check. It returns an error when the
// files cannot be used.
func Load(cfg Config, log zerolog.Logger) (*Bundle, error) {
	if !cfg.Enabled() {
		if cfg.Insecure {
			log.Warn().Msg("internal TLS off (insecure): gRPC is plaintext and callers have no identity; use only for local development")
		}
		return nil, nil
	}
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	b := &Bundle{cfg: cfg, log: log}
	m, err := b.read()
	if err != nil {
		return nil, err
	}
	b.cur.Store(m)
	log.Info().Str("identity", m.id.String()).Time("not_after", m.leaf.NotAfter).Msg("internal TLS on: mutual TLS on every gRPC hop")
	return b, nil
}

// MustLoad is Load for tests and tools whose files are known good; it panics on error.
func MustLoad(cfg Config, log zerolog.Logger) *Bundle {
	b, err := Load(cfg, log)
	if err != nil {
		panic(err)
	}
	return b
}

// Identity is the identity of the current certificate.
func (b *Bundle) Identity() grpcx.Identity { return b.current().id }

// Leaf is the current certificate.
func (b *Bundle) Leaf() *x509.Certificate { return b.current().leaf }

// Pool is the current CA pool.
func (b *Bundle) Pool() *x509.CertPool { return b.current().pool }

func (b *Bundle) files() [3]string { return [3]string{b.cfg.CA, b.cfg.Cert, b.cfg.Key} }

// read parses the files into new material.
func (b *Bundle) read() (*material, error) {
	var m material
	for i, f := range b.files() {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("internal TLS: %w", err)
		}
		m.raw[i] = data
	}
	return b.parse(m.raw)
}

func (b *Bundle) parse(raw [3][]byte) (*material, error) {
	m := &material{raw: raw, pool: x509.NewCertPool()}
	if !m.pool.AppendCertsFromPEM(raw[0]) {
		return nil, fmt.Errorf("internal TLS: tls-ca %s holds no PEM certificate", b.cfg.CA)
	}
	cert, err := tls.X509KeyPair(raw[1], raw[2])
	if err != nil {
		return nil, fmt.Errorf("internal TLS: tls-cert %s, tls-key %s: %w", b.cfg.Cert, b.cfg.Key, err)
	}
	m.cert, m.leaf = &cert, cert.Leaf
	if m.id, err = grpcx.IdentityOfCert(m.leaf); err != nil {
		return nil, fmt.Errorf("internal TLS: tls-cert %s: %w", b.cfg.Cert, err)
	}
	m.srv = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    m.pool,
		NextProtos:   []string{"h2"},
		// Go has verified the chain against ClientCAs; the caller must also carry an
		// identity, which is what authorization reads.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no client certificate")
			}
			_, err := grpcx.IdentityOfCert(cs.PeerCertificates[0])
			return err
		},
	}
	return m, nil
}

// current returns the material for a handshake, reloading it when a file changed.
func (b *Bundle) current() *material {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.cur.Load()
	var raw [3][]byte
	for i, f := range b.files() {
		data, err := os.ReadFile(f)
		if err != nil {
			b.log.Warn().Err(err).Msg("internal TLS: reading the files failed: keeping the loaded certificates")
			return old
		}
		raw[i] = data
	}
	if bytes.Equal(raw[0], old.raw[0]) && bytes.Equal(raw[1], old.raw[1]) && bytes.Equal(raw[2], old.raw[2]) {
		return old
	}
	m, err := b.parse(raw)
	if err != nil {
		// A rotation may be half-way (new cert, old key): retried on the next handshake.
		b.log.Warn().Err(err).Msg("internal TLS: the changed files do not load: keeping the loaded certificates")
		return old
	}
	b.cur.Store(m)
	b.log.Info().Str("identity", m.id.String()).Time("not_after", m.leaf.NotAfter).Str("serial", m.leaf.SerialNumber.Text(16)).
		Msg("internal TLS: certificates reloaded")
	return m
}

// ServerConfig is the TLS config of a server on the internal plane: it presents the
// current certificate and requires a client certificate that chains to the current CA
// bundle and carries a spiffe://asf/... identity.
func (b *Bundle) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return b.current().srv, nil
		},
	}
}

// ClientConfig is the TLS config of a client on the internal plane: it presents the
// current certificate and accepts a server whose certificate chains to the current CA
// bundle and whose identity is of service peer (any service when peer is empty). The
// host name is not checked: the identity is, so any address reaches the same peer.
func (b *Bundle) ClientConfig(peer string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// The standard verification checks the host name; VerifyConnection below checks
		// the chain against the current CA bundle and the peer's identity instead.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return b.current().cert, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := b.VerifyPeer(cs.PeerCertificates, x509.ExtKeyUsageServerAuth, peer)
			return err
		},
	}
}

// VerifyPeer verifies a peer's certificate chain (leaf first) against the current CA
// bundle for usage and returns its identity, which must be of service peer unless peer
// is empty.
func (b *Bundle) VerifyPeer(chain []*x509.Certificate, usage x509.ExtKeyUsage, peer string) (grpcx.Identity, error) {
	if len(chain) == 0 {
		return grpcx.Identity{}, errors.New("internal TLS: peer sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: b.current().pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: time.Now()}); err != nil {
		return grpcx.Identity{}, fmt.Errorf("internal TLS: peer certificate: %w", err)
	}
	id, err := grpcx.IdentityOfCert(chain[0])
	if err != nil {
		return grpcx.Identity{}, fmt.Errorf("internal TLS: %w", err)
	}
	if peer != "" && id.Service != peer {
		return id, fmt.Errorf("internal TLS: peer is %s, want a %s", id, peer)
	}
	return id, nil
}

// ServerOption is the gRPC server option of b: mutual TLS, or plaintext when b is nil.
func ServerOption(b *Bundle) grpc.ServerOption {
	if b == nil {
		return grpc.Creds(insecure.NewCredentials())
	}
	return grpc.Creds(credentials.NewTLS(b.ServerConfig()))
}

// DialOption is the gRPC dial option of b towards a service named peer (empty: any
// identity): mutual TLS, or plaintext when b is nil. It overrides grpcx.Dial's default
// (plaintext) when passed among Dial's options.
func DialOption(b *Bundle, peer string) grpc.DialOption {
	if b == nil {
		return grpc.WithTransportCredentials(insecure.NewCredentials())
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(b.ClientConfig(peer)))
}
