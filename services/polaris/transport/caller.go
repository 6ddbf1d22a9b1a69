package transport

import (
	"context"
	"strings"

	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/services/polaris/service"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// withCaller returns ctx carrying the caller of a gRPC call: the identity of its client
// certificate, the bearer token of its "authorization" metadata, and whether it came on
// a connection without TLS.
func withCaller(ctx context.Context, svc *service.Service) context.Context {
	c := service.Caller{Entrance: service.EntranceGRPC}
	if id, ok := grpcx.IdentityFromContext(ctx); ok {
		c.Identity, c.HasIdentity = service.Identity{Service: id.Service, Instance: id.Instance}, true
	} else if p, ok := peer.FromContext(ctx); ok {
		_, isTLS := p.AuthInfo.(credentials.TLSInfo)
		c.Plaintext = !isTLS
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		for _, v := range md.Get("authorization") {
			if scheme, secret, ok := strings.Cut(v, " "); ok && strings.EqualFold(scheme, "Bearer") {
				c = svc.Authenticate(c, strings.TrimSpace(secret))
				break
			}
			c.BadToken = true
		}
	}
	return service.WithCaller(ctx, c)
}

// WithToken returns ctx whose outgoing gRPC calls carry token as
// "authorization: Bearer <token>", as admin operations need.
func WithToken(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}
