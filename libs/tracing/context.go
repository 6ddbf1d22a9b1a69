package tracing

import (
	"context"
	"encoding/binary"

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

// InjectSpanContext is Inject for span context sc: its W3C trace context as a map; nil
// when sc is not valid.
func InjectSpanContext(sc trace.SpanContext) map[string]string {
	if !sc.IsValid() {
		return nil
	}
	return Inject(trace.ContextWithSpanContext(context.Background(), sc))
}

// SpanContextOf returns the remote span context carried by m (from Inject); not valid
// when m carries none or a malformed one.
func SpanContextOf(m map[string]string) trace.SpanContext {
	if len(m) == 0 {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(Propagator.Extract(context.Background(), propagation.MapCarrier(m)))
}

// Pack splits sc into four fixed-size fields for a message: the trace id's bytes 0–7 and
// 8–15 and the span id, each read big-endian, and the trace flags. A message carries them
// in scalar fields, which cost no allocation to encode or decode, where the W3C map costs
// several (the map, its strings, the parse back); tracestate does not fit and is left out
// (ok is false when sc has one, or is not valid: carry sc with InjectSpanContext then).
func Pack(sc trace.SpanContext) (traceHi, traceLo, span uint64, flags uint32, ok bool) {
	if !sc.IsValid() || sc.TraceState().Len() > 0 {
		return 0, 0, 0, 0, false
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	return binary.BigEndian.Uint64(tid[:8]), binary.BigEndian.Uint64(tid[8:]), binary.BigEndian.Uint64(sid[:]), uint32(w3cFlags(uint32(sc.TraceFlags()))), true
}

// w3cFlags keeps the trace flags the W3C propagator carries: sampled and random.
func w3cFlags(f uint32) trace.TraceFlags {
	return trace.TraceFlags(f) & (trace.FlagsSampled | trace.FlagsRandom)
}

// Unpack is the remote span context that Pack split into its fields; not valid when the
// trace id or the span id is zero. As with the W3C propagator, only the flags it knows
// (sampled, random) are kept.
func Unpack(traceHi, traceLo, span uint64, flags uint32) trace.SpanContext {
	var tid trace.TraceID
	var sid trace.SpanID
	binary.BigEndian.PutUint64(tid[:8], traceHi)
	binary.BigEndian.PutUint64(tid[8:], traceLo)
	binary.BigEndian.PutUint64(sid[:], span)
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: w3cFlags(flags), Remote: true})
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
