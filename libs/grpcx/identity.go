package grpcx

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// IdentityScheme and IdentityTrust form the URI SAN every internal certificate carries:
// spiffe://asf/<service>/<instance>.
const (
	IdentityScheme = "spiffe"
	IdentityTrust  = "asf"
)

// Identity is who a caller is on the internal plane, read from the URI SAN of its
// verified client certificate (spiffe://asf/<service>/<instance>). Service is one of
// webgate, atom, lbclient, loader, polaris, or a tool name (asfctl, admin); Instance names
// the replica (a loader's instance is its advertised address or pod name).
type Identity struct {
	Service  string
	Instance string
}

// URI returns the identity as its URI SAN.
func (id Identity) URI() *url.URL {
	return &url.URL{Scheme: IdentityScheme, Host: IdentityTrust, Path: "/" + id.Service + "/" + id.Instance}
}

// String returns the URI form.
func (id Identity) String() string { return id.URI().String() }

// ParseIdentity reads an identity from a URI SAN; ok is false when u is not one.
func ParseIdentity(u *url.URL) (Identity, bool) {
	if u == nil || u.Scheme != IdentityScheme || u.Host != IdentityTrust {
		return Identity{}, false
	}
	parts := strings.SplitN(strings.TrimPrefix(u.Path, "/"), "/", 2)
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return Identity{}, false
	}
	return Identity{Service: parts[0], Instance: parts[1]}, true
}

// IdentityOfCert returns the identity of a verified certificate.
func IdentityOfCert(c *x509.Certificate) (Identity, error) {
	for _, u := range c.URIs {
		if id, ok := ParseIdentity(u); ok {
			return id, nil
		}
	}
	return Identity{}, fmt.Errorf("certificate %q carries no %s://%s/<service>/<instance> URI SAN", c.Subject.CommonName, IdentityScheme, IdentityTrust)
}

// IdentityFromContext returns the identity of the caller of a gRPC handler: the URI SAN of
// its client certificate, verified by the server's TLS config. ok is false on a plaintext
// (insecure) connection or a certificate without an identity.
func IdentityFromContext(ctx context.Context) (Identity, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return Identity{}, false
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return Identity{}, false
	}
	id, err := IdentityOfCert(ti.State.VerifiedChains[0][0])
	return id, err == nil
}
