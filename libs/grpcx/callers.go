package grpcx

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/athenaserving/asf/libs/aserr"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// ToolIdentity is the service name of the tools' certificate (asfbench, test
// clients): every internal gRPC server admits it besides its own callers.
const ToolIdentity = "asfctl"

// CallerCheck returns AllowCallers' check of a call to method with context ctx (a gRPC
// handler's, or any whose peer.Peer carries the TLS state, as rawstream's streams do): nil
// for health, reflection, a caller of one of services or ToolIdentity, and a caller
// without an identity; else 10403 (PermissionDenied).
func CallerCheck(services ...string) func(ctx context.Context, method string) error {
	allowed := append(slices.Clone(services), ToolIdentity)
	return func(ctx context.Context, method string) error {
		if strings.HasPrefix(method, "/"+healthpb.Health_ServiceDesc.ServiceName+"/") || strings.HasPrefix(method, "/grpc.reflection.") {
			return nil
		}
		id, ok := IdentityFromContext(ctx)
		if !ok || slices.Contains(allowed, id.Service) {
			return nil
		}
		return ToStatus(fmt.Errorf("%s: caller %s is not one of %s: %w", method, id, strings.Join(allowed, ", "), aserr.ErrForbidden))
	}
}

// AllowCallers returns the server options that admit only callers whose certificate
// identity is of one of services (or ToolIdentity): any other identity is refused with
// 10403 (PermissionDenied) before the handler runs, so a certificate of the CA issued to
// one service cannot call another service's RPCs (a loader calling Atom.Call).
// grpc.health.v1 and server reflection answer every caller. A caller without an identity passes: on a TLS
// server the handshake has already refused it, so that is a plaintext (insecure) server.
func AllowCallers(services ...string) []grpc.ServerOption {
	check := CallerCheck(services...)
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := check(ctx, info.FullMethod); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := check(ss.Context(), info.FullMethod); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}
}
