// Package pki generates the internal plane's certificates: a CA and, per service
// instance, an ECDSA P-256 certificate for both TLS server and client use carrying the
// URI SAN spiffe://asf/<service>/<instance>, DNS SANs for localhost and the given names,
// and IP SANs for 127.0.0.1, ::1 and the given addresses. make run, the compose secrets
// step, the Helm docs and the tests use it (through tools/cmd/asfpki or directly).
//
//	ca, _ := pki.NewCA("asf internal CA")
//	leaf, _ := ca.Issue(grpcx.Identity{Service: "atom", Instance: "atom-0"}, "atom", "atom.asf.svc")
//	_ = ca.WriteCert(dir)                 // dir/ca.crt
//	_ = leaf.Write(dir, "atom")           // dir/atom.crt, dir/atom.key (0600)
//	// or all at once, reusing what exists:
//	_ = pki.Ensure(dir, []pki.Want{{ID: grpcx.Identity{Service: "atom", Instance: "atom-0"}, Names: []string{"atom"}}})
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/athenaserving/asf/libs/grpcx"
)

// Default validities.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	LeafValidity = 365 * 24 * time.Hour
)

// File names inside a PKI directory (Ensure, Write, WriteCert, LoadCA).
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
)

// CA is a certificate authority that issues internal certificates.
type CA struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
	// LeafValidity is how long issued certificates are valid (default LeafValidity).
	LeafValidity time.Duration
}

// Leaf is an issued certificate and its key, as PEM.
type Leaf struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// NewCA generates a self-signed CA named name, valid for CAValidity.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Athena Serving"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return &CA{Cert: cert, Key: key, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// LoadCA reads a CA written by WriteFiles (dir/ca.crt, dir/ca.key). When ca.crt is a
// bundle (during a rotation), the CA is its first certificate, which must match ca.key.
func LoadCA(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("pki: %s: no PEM CA certificate or key", dir)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", CACertFile, err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", CAKeyFile, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("pki: %s does not match %s", CAKeyFile, CACertFile)
	}
	return &CA{Cert: cert, Key: key, CertPEM: pem.EncodeToMemory(cb)}, nil
}

// KeyPEM is the CA's private key as PEM.
func (ca *CA) KeyPEM() []byte {
	der, _ := x509.MarshalECPrivateKey(ca.Key) // a P-256 key always marshals
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

// WriteCert writes the CA certificate to dir/ca.crt (the bundle peers trust).
func (ca *CA) WriteCert(dir string) error {
	return writeFile(filepath.Join(dir, CACertFile), ca.CertPEM, 0o644)
}

// WriteFiles writes the CA certificate and key to dir/ca.crt and dir/ca.key (0600).
func (ca *CA) WriteFiles(dir string) error {
	if err := ca.WriteCert(dir); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, CAKeyFile), ca.KeyPEM(), 0o600)
}

// Issue signs a certificate for id, usable as TLS server and client. names are extra
// SANs: IP addresses become IP SANs, everything else DNS SANs; localhost, 127.0.0.1 and
// ::1 are always included.
func (ca *CA) Issue(id grpcx.Identity, names ...string) (*Leaf, error) {
	if id.Service == "" || id.Instance == "" {
		return nil, errors.New("pki: identity needs a service and an instance")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	validity := ca.LeafValidity
	if validity <= 0 {
		validity = LeafValidity
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: id.Service + "/" + id.Instance, Organization: []string{"Athena Serving"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{id.URI()},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	seen := map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}
	for _, n := range names {
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: issue %s: %w", id, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return &Leaf{
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
	}, nil
}

// Write writes the certificate and key to dir/<name>.crt and dir/<name>.key (0600). The
// key is written first and each file is replaced atomically, so a reader that watches the
// certificate sees a complete pair once both are in place.
func (l *Leaf) Write(dir, name string) error {
	if err := writeFile(filepath.Join(dir, name+".key"), l.KeyPEM, 0o600); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, name+".crt"), l.CertPEM, 0o644)
}

// Want is one certificate Ensure provides: File names it (dir/<File>.crt and .key;
// default ID.Service), ID is its identity, Names its extra SANs.
type Want struct {
	File  string
	ID    grpcx.Identity
	Names []string
}

// Services are the identities the suite issues certificates for: the five services and
// the tools' identity (grpcx.ToolIdentity: asfbench, schema pushes).
var Services = []string{"polaris", "lbclient", "loader", "atom", "webgate", grpcx.ToolIdentity}

// ServiceWants returns one Want per service, with identity spiffe://asf/<service>/<instance>
// (instance "": the service's own name) and the service's name among its DNS names (its
// name in docker-compose and Kubernetes) beside names.
func ServiceWants(services []string, instance string, names ...string) []Want {
	out := make([]Want, 0, len(services))
	for _, svc := range services {
		inst := instance
		if inst == "" {
			inst = svc
		}
		out = append(out, Want{ID: grpcx.Identity{Service: svc, Instance: inst}, Names: append([]string{svc}, names...)})
	}
	return out
}

// Ensure makes dir a PKI directory: a CA (dir/ca.crt, dir/ca.key) and a certificate per
// want, generating what is missing and keeping what exists, so the second start reuses
// the first one's files.
func Ensure(dir string, wants []Want) error { return EnsureWith(dir, 0, wants) }

// EnsureWith is Ensure issuing certificates valid for validity (0: LeafValidity).
func EnsureWith(dir string, validity time.Duration, wants []Want) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	ca, err := LoadCA(dir)
	if errors.Is(err, os.ErrNotExist) {
		if ca, err = NewCA("asf internal CA"); err == nil {
			err = ca.WriteFiles(dir)
		}
	}
	if err != nil {
		return err
	}
	ca.LeafValidity = validity
	for _, w := range wants {
		name := w.File
		if name == "" {
			name = w.ID.Service
		}
		if exists(filepath.Join(dir, name+".crt")) && exists(filepath.Join(dir, name+".key")) {
			continue
		}
		leaf, err := ca.Issue(w.ID, w.Names...)
		if err != nil {
			return err
		}
		if err := leaf.Write(dir, name); err != nil {
			return err
		}
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// writeFile replaces path atomically (temporary file + rename).
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("pki: %w", err)
	}
	if err := tmp.Chmod(mode); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("pki: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}
