package grpcx

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/libs/tracing"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// tracedHealth serves grpc.health.v1 traced with srv and returns a client traced with cli.
func tracedHealth(tb testing.TB, srv, cli *tracing.Provider, opts ...grpc.ServerOption) healthpb.HealthClient {
	tb.Helper()
	s := NewServer("test", zerolog.Nop(), nil, append(TraceServer(srv), opts...)...)
	s.SetServing(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	go func() { _ = s.Serve(ln) }()
	tb.Cleanup(s.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(), append(TraceDial(cli), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = cc.Close() })
	return healthpb.NewHealthClient(cc)
}

// providers returns a server provider (parent-based) and a client provider sampling its
// roots at rate, both exporting to exp.
func providers(tb testing.TB, exp *tracetest.InMemoryExporter, rate float64) (srv, cli *tracing.Provider) {
	tb.Helper()
	srv, err := tracing.New(tracing.Config{}, "server", tracing.Options{Exporter: exp})
	require.NoError(tb, err)
	cli, err = tracing.New(tracing.Config{}, "client", tracing.Options{Exporter: exp, Root: tracing.RateSampler(rate)})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = srv.Shutdown(context.Background()); _ = cli.Shutdown(context.Background()) })
	return srv, cli
}

// TestUnsampledCallsCarryOnlyTheTraceID checks both sides of a call: a sampled trace gets
// a client and a server span; an unsampled one gets no span at all, but the server
// sees the caller's trace id (its log lines name it).
func TestUnsampledCallsCarryOnlyTheTraceID(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rate  float64
		spans int
	}{{"sampled", 1, 2}, {"unsampled", 0, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			srv, cli := providers(t, exp, tc.rate)
			seen := make(chan trace.SpanContext, 1)
			hc := tracedHealth(t, srv, cli, grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
				seen <- trace.SpanContextFromContext(ctx)
				return h(ctx, req)
			}))
			ctx, root := cli.Tracer("test").Start(t.Context(), "root")
			_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
			root.End()
			require.NoError(t, err)
			got := <-seen
			require.Equal(t, root.SpanContext().TraceID(), got.TraceID(), "the server sees the caller's trace")
			require.Equal(t, tc.rate == 1, got.IsSampled())
			rpcSpans := func() int {
				require.NoError(t, srv.ForceFlush(t.Context()))
				require.NoError(t, cli.ForceFlush(t.Context()))
				n := 0
				for _, s := range exp.GetSpans() {
					if s.Name == "grpc.health.v1.Health/Check" {
						n++
					}
				}
				return n
			}
			// The server ends its span when the call ends on its side, which may come
			// just after the client has the answer.
			testpoll.Until(t, 5*time.Second, "the call's spans", func() bool { return rpcSpans() >= tc.spans })
			require.Equal(t, tc.spans, rpcSpans())
		})
	}
}

// BenchmarkTracedCall is one unary call with tracing off, on but unsampled (the 99 % of a
// 1 % rate) and sampled: the cost the tracing interceptors and the trace context add to a hop.
func BenchmarkTracedCall(b *testing.B) {
	for _, bc := range []struct {
		name string
		on   bool
		rate float64
	}{{"off", false, 0}, {"unsampled", true, 0}, {"sampled", true, 1}} {
		b.Run(bc.name, func(b *testing.B) {
			srv, cli := tracing.Off(), tracing.Off()
			if bc.on {
				srv, cli = providers(b, tracetest.NewInMemoryExporter(), bc.rate)
			}
			hc := tracedHealth(b, srv, cli)
			tr := cli.Tracer("bench")
			b.ReportAllocs()
			for b.Loop() {
				ctx, span := tr.Start(context.Background(), "root")
				_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
				span.End()
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
