package svctest

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/services/atom/atomtest"
	"github.com/athenaserving/asf/services/lbclient/lbclienttest"
	"github.com/athenaserving/asf/services/loader"
	"github.com/athenaserving/asf/services/loader/loadertest"
	"github.com/athenaserving/asf/services/polaris/polaristest"
	"github.com/athenaserving/asf/services/webgate/webgatetest"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
)

// TestEveryServiceStartsFromItsTestPackage starts polaris, a loader, lbclient, atom and
// webgate from their test packages and sends one request through them all.
func TestEveryServiceStartsFromItsTestPackage(t *testing.T) {
	p := polaristest.Start(t)
	ld := loadertest.Start(t, func(c *loader.Config) { c.PolarisAddr, c.Service = p.GRPCAddr(), "echo" })
	lb := lbclienttest.Start(t, p.GRPCAddr())
	testpoll.Until(t, 10*time.Second, "the loader in lbclient's view", func() bool {
		return lb.View().Live("echo", time.Now()) == 1
	})
	a := atomtest.Start(t, lb.GRPCAddr())
	w := webgatetest.Start(t, a.GRPCAddr())

	body := `{"header":{"app_id":"a","status":3},"payload":{"input":{"encoding":"utf8","status":3,"text":"aGk="}}}`
	resp, err := http.Post("http://"+w.HTTPAddr()+"/v1/private/echo", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	require.Contains(t, string(out), `"code":0`)
	require.Contains(t, string(out), `"text":"aGk="`)

	// Every gRPC port lists and describes its services (grpcurl list/describe) and answers
	// grpc.health.v1 for each service's full name as well as for the whole server.
	for _, port := range []struct {
		addr     string
		services []string
	}{
		{p.GRPCAddr(), []string{"asf.polaris.v1.Registry", "asf.polaris.v1.Config", "asf.polaris.v1.Resources"}},
		{ld.GRPCAddr(), []string{"asf.loader.v1.Loader"}},
		{lb.GRPCAddr(), []string{"asf.lb.v1.Lb"}},
		{a.GRPCAddr(), []string{"asf.atom.v1.Atom"}},
	} {
		requireReflectionAndHealth(t, port.addr, port.services)
	}
}

// requireReflectionAndHealth checks that the gRPC server at addr lists want through server
// reflection, returns the file declaring each, and reports each SERVING by name.
func requireReflectionAndHealth(t *testing.T, addr string, want []string) {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer cc.Close()
	stream, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(t.Context())
	require.NoError(t, err)
	defer func() { _ = stream.CloseSend() }()
	require.NoError(t, stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: "*"},
	}))
	resp, err := stream.Recv()
	require.NoError(t, err, addr)
	var listed []string
	for _, svc := range resp.GetListServicesResponse().GetService() {
		listed = append(listed, svc.GetName())
	}
	hc := healthpb.NewHealthClient(cc)
	for _, name := range append([]string{""}, want...) {
		if name != "" {
			require.Contains(t, listed, name, addr)
			require.NoError(t, stream.Send(&reflectionpb.ServerReflectionRequest{
				MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: name},
			}))
			fd, err := stream.Recv()
			require.NoError(t, err, name)
			require.NotEmpty(t, fd.GetFileDescriptorResponse().GetFileDescriptorProto(), name)
		}
		hr, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: name})
		require.NoError(t, err, "%s health %q", addr, name)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, hr.GetStatus(), "%s health %q", addr, name)
	}
}
