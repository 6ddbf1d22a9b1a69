package natsbus

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"

	"github.com/athenaserving/asf/libs/tlsx"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ServerIdentities are the services whose certificate a NATS server may present to
// clients on the internal plane: polaris (its embedded server) and nats (an external
// server with a certificate of the internal CA).
var ServerIdentities = []string{UserPolaris, "nats"}

// WithTLS makes the embedded server require mutual TLS with b (the internal plane's
// certificates, re-read on every handshake): a client must present a certificate of the
// internal CA before it may authenticate with its nkey. A nil b leaves TLS off.
func WithTLS(b *tlsx.Bundle) EmbeddedOption {
	return func(o *server.Options) error {
		if b == nil {
			return nil
		}
		o.TLSConfig = b.ServerConfig()
		o.TLS = true
		o.TLSVerify = true
		o.TLSTimeout = 5
		return nil
	}
}

// TLSOption is the client side of WithTLS: TLS presenting this service's certificate
// and accepting a server whose certificate chains to the internal CA and names one of
// ServerIdentities. TLS is used when the server requires it or the URL is tls:// (as
// an embedded server with TLS announces itself), so an external NATS without TLS keeps
// working with nkeys only. A nil b gives no option.
func TLSOption(b *tlsx.Bundle) []nats.Option {
	if b == nil {
		return nil
	}
	cfg := b.ClientConfig("")
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		id, err := b.VerifyPeer(cs.PeerCertificates, x509.ExtKeyUsageServerAuth, "")
		if err != nil {
			return err
		}
		for _, s := range ServerIdentities {
			if id.Service == s {
				return nil
			}
		}
		return fmt.Errorf("nats tls: server is %s, want one of %v", id, ServerIdentities)
	}
	return []nats.Option{func(o *nats.Options) error { o.TLSConfig = cfg; return nil }}
}
