package service

import (
	"context"

	"github.com/athenaserving/asf/services/polaris/adminapi/auth"
)

// Identity is an internal service proven by its mTLS client certificate
// (spiffe://asf/<service>/<instance>); the gRPC transport fills it from
// grpcx.IdentityFromContext, so this package imports no transport.
type Identity struct {
	Service  string
	Instance string
}

// Entrances of the service layer, for logs and metrics.
const (
	EntranceGRPC    = "grpc"
	EntranceHTTP    = "http"
	EntranceConsole = "console"
)

// Caller is who asks: an internal service (Identity), a token holder (Token), both, or
// neither. Transports build it; Authorize decides from it.
type Caller struct {
	// Entrance is where the call came in (EntranceGRPC, EntranceHTTP, EntranceConsole).
	Entrance string
	// Identity is set when HasIdentity: the caller's verified certificate identity.
	Identity    Identity
	HasIdentity bool
	// Token is set when HasToken: the bearer token the caller presented, authenticated.
	Token    auth.Token
	HasToken bool
	// BadToken is set when the caller presented a token that is unknown or revoked.
	BadToken bool
	// Plaintext is set for a gRPC call on a connection without a client certificate
	// (polaris runs with insecure: true); such a caller is trusted as an internal
	// service, except for admin operations.
	Plaintext bool
}

// Who names the caller in logs: the token id, the identity, or "plaintext".
func (c Caller) Who() string {
	switch {
	case c.HasToken:
		return "token:" + c.Token.ID
	case c.HasIdentity:
		return "spiffe://asf/" + c.Identity.Service + "/" + c.Identity.Instance
	case c.Plaintext:
		return "plaintext"
	}
	return "anonymous"
}

type callerKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// callerFrom returns the caller ctx carries (the zero Caller, anonymous, when none).
func callerFrom(ctx context.Context) Caller {
	c, _ := ctx.Value(callerKey{}).(Caller)
	return c
}

// Grant is what Authorize allowed: Redact tells the endpoint to hide secrets in what it
// returns (a viewer token reading config).
type Grant struct {
	Redact bool
}

type grantKey struct{}

func withGrant(ctx context.Context, g Grant) context.Context {
	return context.WithValue(ctx, grantKey{}, g)
}

func grantFrom(ctx context.Context) Grant {
	g, _ := ctx.Value(grantKey{}).(Grant)
	return g
}
