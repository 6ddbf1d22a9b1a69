// Package tracing builds a service's OpenTelemetry tracer provider (OTLP/gRPC export,
// W3C Trace Context propagation) from its config keys, and the small helpers the request
// path uses: the trace id in log lines, exemplars on latency histograms, trace context
// carried in a message field. Each service owns its Provider (never the global one) and
// shuts it down last.
//
//	type Config struct { ...; tracing.Config }            // trace-endpoint, trace-ca-file
//	tp, err := tracing.New(cfg.Config, "atom", tracing.Options{})
//	srv := grpcx.NewServer("atom", log, reg, grpcx.TraceServer(tp)...)
//	cc, _ := grpcx.Dial(addr, grpcx.TraceDial(tp)...)
//	if tp.On() {
//	    ctx, span := tp.Tracer("atom").Start(ctx, "pick")
//	    defer span.End()
//	}
//	defer tp.Shutdown(ctx)                                // last step of Shutdown
package tracing
