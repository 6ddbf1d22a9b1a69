package grpcx

import (
	"bytes"
	"context"
	"net"
	"slices"
	"testing"

	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/libs/tracing"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
)

// startLoaderServer serves an unimplemented loader.v1.Loader on a NewServer and returns it
// with a client connection.
func startLoaderServer(t *testing.T) (*Server, *grpc.ClientConn) {
	t.Helper()
	s := NewServer("test", zerolog.Nop(), nil)
	loaderpb.RegisterLoaderServer(s, loaderpb.UnimplementedLoaderServer{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return s, cc
}

func TestHealthPerServiceName(t *testing.T) {
	s, cc := startLoaderServer(t)
	hc := healthpb.NewHealthClient(cc)
	check := func(name string) healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		resp, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: name})
		require.NoError(t, err, name)
		return resp.GetStatus()
	}
	require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, check(""))

	s.SetServing(true)
	for _, name := range []string{"", "asf.loader.v1.Loader"} {
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, check(name), name)
	}
	s.SetServing(false)
	for _, name := range []string{"", "asf.loader.v1.Loader"} {
		require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, check(name), name)
	}
	_, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: "nope.v1.Nope"})
	require.Equal(t, codes.NotFound, status.Code(err), "an unknown service name is NOT_FOUND")
}

func TestReflectionListsAndDescribesServices(t *testing.T) {
	_, cc := startLoaderServer(t)
	stream, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(t.Context())
	require.NoError(t, err)
	defer func() { _ = stream.CloseSend() }()

	require.NoError(t, stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: "*"},
	}))
	resp, err := stream.Recv()
	require.NoError(t, err)
	var names []string
	for _, svc := range resp.GetListServicesResponse().GetService() {
		names = append(names, svc.GetName())
	}
	for _, want := range []string{"asf.loader.v1.Loader", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		require.True(t, slices.Contains(names, want), "%s not in %v", want, names)
	}

	// grpcurl describe: the file that declares the service comes back.
	require.NoError(t, stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "asf.loader.v1.Loader"},
	}))
	resp, err = stream.Recv()
	require.NoError(t, err)
	require.NotEmpty(t, resp.GetFileDescriptorResponse().GetFileDescriptorProto())
}

// TestTracedCallExemplarAndLogLine checks that a traced call's duration carries its trace
// id as exemplar and that its log line names the trace.
func TestTracedCallExemplarAndLogLine(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	srvTP, err := tracing.New(tracing.Config{}, "test", tracing.Options{Exporter: exp})
	require.NoError(t, err)
	cliTP, err := tracing.New(tracing.Config{}, "client", tracing.Options{Exporter: exp, Root: sdktrace.AlwaysSample()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srvTP.Shutdown(context.Background()); _ = cliTP.Shutdown(context.Background()) })

	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	s := NewServer("test", zerolog.New(&logs).Level(zerolog.DebugLevel), reg, TraceServer(srvTP)...)
	s.SetServing(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(), append(TraceDial(cliTP), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })

	ctx, span := cliTP.Tracer("test").Start(t.Context(), "caller")
	_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	span.End()
	require.NoError(t, err)
	traceID := span.SpanContext().TraceID().String()

	mfs, err := reg.Gather()
	require.NoError(t, err)
	var exemplars []string
	for _, mf := range mfs {
		if mf.GetName() != "asf_test_grpc_call_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, b := range m.GetHistogram().GetBucket() {
				for _, l := range b.GetExemplar().GetLabel() {
					exemplars = append(exemplars, l.GetName()+"="+l.GetValue())
				}
			}
		}
	}
	require.Equal(t, []string{tracing.LogField + "=" + traceID}, exemplars)
	require.Contains(t, logs.String(), `"`+tracing.LogField+`":"`+traceID+`"`)
}
