package tracing

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// LogField is the zerolog field that carries the trace id in every log line of a traced
// request.
const LogField = "trace_id"

// TraceID is the trace id of ctx's span in hex; ok is false without a valid span (tracing
// off, or no trace context).
func TraceID(ctx context.Context) (id string, ok bool) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return "", false
	}
	return sc.TraceID().String(), true
}

// WithLog adds ctx's trace id to log (field trace_id); without a valid span it returns log
// unchanged, at no cost.
func WithLog(ctx context.Context, log zerolog.Logger) zerolog.Logger {
	if id, ok := TraceID(ctx); ok {
		return log.With().Str(LogField, id).Logger()
	}
	return log
}

// Observe records v on o, with ctx's trace id as exemplar when ctx's span is sampled
// (a Prometheus exemplar links a latency bucket to a trace that shows it).
func Observe(ctx context.Context, o prometheus.Observer, v float64) {
	sc := trace.SpanContextFromContext(ctx)
	if sc.IsSampled() {
		if eo, ok := o.(prometheus.ExemplarObserver); ok {
			eo.ObserveWithExemplar(v, prometheus.Labels{LogField: sc.TraceID().String()})
			return
		}
	}
	o.Observe(v)
}

// Inject returns the W3C trace context (traceparent, tracestate) of ctx's span as a map
// to carry in a message field; nil without a valid span.
func Inject(ctx context.Context) map[string]string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	m := make(map[string]string, 2)
	Propagator.Inject(ctx, propagation.MapCarrier(m))
	return m
}

// InjectSampled is Inject for a sampled span, nil otherwise: for a message whose
// receiver only records spans (lbclient's picks log nothing per pick), so an unsampled
// trace need not travel with it.
func InjectSampled(ctx context.Context) map[string]string {
	if !trace.SpanContextFromContext(ctx).IsSampled() {
		return nil
	}
	return Inject(ctx)
}

// Extract returns ctx with the remote span context carried by m (from Inject); ctx
// unchanged when m is empty.
func Extract(ctx context.Context, m map[string]string) context.Context {
	if len(m) == 0 {
		return ctx
	}
	return Propagator.Extract(ctx, propagation.MapCarrier(m))
}
