package rawstream

import (
	"context"
	"crypto/tls"
	"errors"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// ServerCreds is the gRPC server option for a server on a Listener's GRPC: with tls, its
// connections come with the TLS handshake done by the Listener, and the handlers see the
// peer's credentials.TLSInfo as with TLS credentials; without, plaintext.
func ServerCreds(tls bool) grpc.ServerOption {
	if !tls {
		return grpc.Creds(insecure.NewCredentials())
	}
	return grpc.Creds(handshaken{})
}

// handshaken is the transport credentials of connections whose TLS handshake is done.
type handshaken struct{}

func (handshaken) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("rawstream: server credentials only")
}

func (handshaken) ServerHandshake(nc net.Conn) (net.Conn, credentials.AuthInfo, error) {
	tc, ok := nc.(*tls.Conn)
	if !ok {
		return nil, nil, errors.New("rawstream: connection without TLS on a TLS server")
	}
	return tc, tlsInfoOf(tc.ConnectionState()), nil
}

func (handshaken) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (h handshaken) Clone() credentials.TransportCredentials { return h }

func (handshaken) OverrideServerName(string) error { return nil }

// tlsInfoOf is what gRPC's TLS credentials report for a connection.
func tlsInfoOf(st tls.ConnectionState) credentials.TLSInfo {
	info := credentials.TLSInfo{State: st, CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}
	if len(st.PeerCertificates) > 0 {
		for _, u := range st.PeerCertificates[0].URIs {
			if u.Scheme == "spiffe" {
				info.SPIFFEID = u
				break
			}
		}
	}
	return info
}
