package grpcx

import (
	"context"

	"github.com/athenaserving/asf/libs/tracing"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
)

// TraceServer returns the server options that trace every sampled call with tp: the
// caller's trace context is read from the gRPC metadata and a server span covers each
// unary call or whole stream. A call whose caller's trace is not sampled gets no span, only
// its trace id in ctx (for its log lines). With tracing off it returns none, so the
// server costs nothing more.
func TraceServer(tp *tracing.Provider) []grpc.ServerOption {
	if !tp.On() {
		return nil
	}
	return []grpc.ServerOption{grpc.StatsHandler(sampledOnly{inner: otelgrpc.NewServerHandler(otelOptions(tp)...)})}
}

// TraceDial returns the dial options that trace every sampled call made on a connection
// with tp: a client span per unary call or whole stream, its context sent in the gRPC
// metadata. A call in an unsampled trace sends only its traceparent. With tracing off it
// returns none.
func TraceDial(tp *tracing.Provider) []grpc.DialOption {
	if !tp.On() {
		return nil
	}
	return []grpc.DialOption{grpc.WithStatsHandler(sampledOnly{inner: otelgrpc.NewClientHandler(otelOptions(tp)...), client: true})}
}

func otelOptions(tp *tracing.Provider) []otelgrpc.Option {
	return []otelgrpc.Option{
		otelgrpc.WithTracerProvider(tp.TracerProvider()),
		otelgrpc.WithPropagators(tp.Propagator()),
		// Metrics are grpcx's own (Prometheus); otelgrpc's would be a second set.
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
	}
}

// traceparent is the W3C header that carries the trace context in gRPC metadata.
const traceparent = "traceparent"

// sampledOnly hands otelgrpc only the calls of sampled traces. otelgrpc builds a span, its
// attributes and a metadata copy for every call, recorded or not — about 85 allocations per
// call on the two sides — while at a 1 % sample rate 99 calls in 100 record nothing. An
// unsampled call instead carries just its traceparent (client) or has it read into ctx as
// the remote span context (server), so the trace id still reaches every service's log
// lines. Whether a call was handed over is read back from ctx: after otelgrpc's TagRPC it
// holds a sampled span, otherwise an unsampled (or no) span context.
type sampledOnly struct {
	inner  stats.Handler
	client bool
}

func (h sampledOnly) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	if h.client {
		sc := trace.SpanContextFromContext(ctx)
		if sc.IsSampled() {
			return h.inner.TagRPC(ctx, info)
		}
		if sc.IsValid() {
			ctx = metadata.AppendToOutgoingContext(ctx, traceparent, tracing.TraceResponse(sc))
		}
		return ctx
	}
	tp := metadata.ValueFromIncomingContext(ctx, traceparent) // no copy of the whole metadata
	if len(tp) == 0 {
		return ctx
	}
	remote := tracing.Propagator.Extract(ctx, traceparentCarrier(tp[0]))
	if trace.SpanContextFromContext(remote).IsSampled() {
		return h.inner.TagRPC(ctx, info)
	}
	return remote
}

func (h sampledOnly) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if trace.SpanContextFromContext(ctx).IsSampled() {
		h.inner.HandleRPC(ctx, s)
	}
}

func (h sampledOnly) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	return h.inner.TagConn(ctx, info)
}

func (h sampledOnly) HandleConn(ctx context.Context, s stats.ConnStats) { h.inner.HandleConn(ctx, s) }

// traceparentCarrier is the one header a call's trace context travels in.
type traceparentCarrier string

func (c traceparentCarrier) Get(key string) string {
	if key == traceparent {
		return string(c)
	}
	return ""
}

func (traceparentCarrier) Set(string, string) {}

func (traceparentCarrier) Keys() []string { return []string{traceparent} }
