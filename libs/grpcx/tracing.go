package grpcx

import (
	"github.com/athenaserving/asf/libs/tracing"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/grpc"
)

// TraceServer returns the server options that trace every call with tp: the caller's
// trace context is read from the gRPC metadata and a server span covers each unary call
// or whole stream. With tracing off it returns none, so the server costs nothing more.
func TraceServer(tp *tracing.Provider) []grpc.ServerOption {
	if !tp.On() {
		return nil
	}
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(otelOptions(tp)...))}
}

// TraceDial returns the dial options that trace every call made on a connection with tp:
// a client span per unary call or whole stream, its context sent in the gRPC metadata.
// With tracing off it returns none.
func TraceDial(tp *tracing.Provider) []grpc.DialOption {
	if !tp.On() {
		return nil
	}
	return []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelOptions(tp)...))}
}

func otelOptions(tp *tracing.Provider) []otelgrpc.Option {
	return []otelgrpc.Option{
		otelgrpc.WithTracerProvider(tp.TracerProvider()),
		otelgrpc.WithPropagators(tp.Propagator()),
		// Metrics are grpcx's own (Prometheus); otelgrpc's would be a second set.
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
	}
}
