package transport

import (
	"context"
	"net/http"

	"github.com/athenaserving/asf/libs/tracing"
	"github.com/athenaserving/asf/services/webgate/gate"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Trace headers of webgate's answers (docs/protocol.md "Tracing").
const (
	// HeaderTraceID carries the request's trace id (32 hex digits) whenever tracing is on,
	// sampled or not: it is the trace_id of the request's log lines in every service, and
	// of its trace in the trace UI when sampled.
	HeaderTraceID = "X-Asf-Trace-Id"
	// HeaderTraceResponse is the W3C Trace Context traceresponse header:
	// 00-<trace id>-<webgate span id>-<01 sampled | 00 not>.
	HeaderTraceResponse = "Traceresponse"
)

// startTrace starts the request's span (once, session or oip): a child of the client's
// traceparent when it sent one, recorded at the capability's meta.trace_sample_rate, else
// at trace-sample-rate. It sets the trace headers on the answer and the trace id on the
// request's logger, and returns ctx carrying the span.
func (h *Handler) startTrace(ctx context.Context, w http.ResponseWriter, r *http.Request, info *gate.Request) context.Context {
	if _, ok := r.Header["Traceparent"]; ok { // net/http canonicalises the names it reads
		ctx = tracing.Propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	info.TraceRate = h.opts.TraceSampleRate
	if rate, ok := info.Schema.TraceSampleRate(); ok {
		info.TraceRate = rate
	}
	ctx = tracing.WithSampleRate(ctx, info.TraceRate)
	name := "once"
	switch {
	case info.OIP != "":
		name = "oip " + info.OIP
	case info.Stream:
		name = "session"
	}
	ctx, span := h.tracer.Start(ctx, name, spanKindServer, trace.WithTimestamp(info.Start))
	if span.IsRecording() { // an unsampled request's span records nothing: no attributes built
		span.SetAttributes(attribute.String("asf.sid", info.SID), attribute.String("asf.capability", info.Capability),
			attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path),
			attribute.String("client.address", info.ClientIP))
	}
	info.Span = span
	tr := tracing.TraceResponse(span.SpanContext())
	id := tracing.TraceResponseID(tr)
	// Both header names are canonical: set them straight, with one slice for both values.
	vals := []string{id, tr}
	hdr := w.Header()
	hdr[HeaderTraceID] = vals[0:1:1]
	hdr[HeaderTraceResponse] = vals[1:2:2]
	info.Log = info.Log.With().Str(tracing.LogField, id).Logger()
	return ctx
}

// spanKindServer is built once: an option made per request costs an allocation.
var spanKindServer = trace.WithSpanKind(trace.SpanKindServer)

// endTrace ends the request's span with its ASE code.
func endTrace(info *gate.Request) {
	if info.Code != 0 {
		info.Span.SetAttributes(attribute.Int("asf.code", info.Code))
		info.Span.SetStatus(codes.Error, "")
	}
	info.Span.End()
}
