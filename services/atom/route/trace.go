package route

import (
	"context"

	"github.com/athenaserving/asf/libs/aserr"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Span names of the router (docs/operations.md "Traces").
const (
	spanPick          = "pick"
	spanLoaderOnce    = "loader once"
	spanLoaderSession = "loader session"
)

// startSpan starts a span of the router's tracer as a child of ctx's; without a tracer
// (tracing off) or in a trace that is not sampled (it would record nothing) it returns ctx
// and a nil span at no cost: ctx keeps the trace id for the calls and log lines below.
func (r *Router) startSpan(ctx context.Context, name string) (context.Context, trace.Span) {
	if r.opts.Tracer == nil || !trace.SpanContextFromContext(ctx).IsSampled() {
		return ctx, nil
	}
	return r.opts.Tracer.Start(ctx, name)
}

// attemptAttrs describes one loader attempt: which loader, its rank among the request's
// attempts and whether it is a retry after a refusal.
func attemptAttrs(span trace.Span, sid, addr string, n int) {
	span.SetAttributes(attribute.String("asf.sid", sid), attribute.String("asf.loader", addr),
		attribute.Int("asf.attempt", n), attribute.Bool("asf.retry", n > 1))
}

// endSpan ends span (nil: nothing) with err's ASE code.
func endSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetAttributes(attribute.Int("asf.code", aserr.CodeOf(err)))
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
