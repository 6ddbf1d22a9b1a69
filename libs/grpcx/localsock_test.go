package grpcx

import (
	"context"
	"net"
	"os"
	"testing"

	"github.com/athenaserving/asf/libs/localsock"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
)

// TestLocalSocketsCarryCallsToACoLocatedServer: a server listening through localsock and
// a client dialing its host:port with LocalSockets talk over the Unix socket; a client
// without the option, and one with a directory where the server serves nothing, over TCP.
func TestLocalSocketsCarryCallsToACoLocatedServer(t *testing.T) {
	dir, err := os.MkdirTemp("", "gx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := localsock.Listen(tcp, dir)
	if err != nil {
		t.Fatal(err)
	}
	networks := make(chan string, 8)
	s := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if p, ok := peer.FromContext(ctx); ok {
			networks <- p.Addr.Network()
		}
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(s, health.NewServer())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	t.Cleanup(func() { s.Stop(); <-done })

	other, err := os.MkdirTemp("", "gy")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(other) })
	for _, c := range []struct {
		opt  grpc.DialOption
		want string
	}{{LocalSockets(dir), "unix"}, {LocalSockets(""), "tcp"}, {LocalSockets(other), "tcp"}} {
		cc, err := Dial(ln.Addr().String(), c.opt)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := healthpb.NewHealthClient(cc).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
		if got := <-networks; got != c.want {
			t.Errorf("call went over %s, want %s", got, c.want)
		}
		_ = cc.Close()
	}
}
