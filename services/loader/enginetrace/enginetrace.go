// Package enginetrace names the loader's spans and their attributes and holds the helpers
// every engine kind shares: the session manager starts the spans (licence wait, engine
// call once and per session frame); engines only add to the span they find in the ctx of
// the call (trace.SpanFromContext), so they need no tracer of their own.
//
//	ctx, span := tracer.Start(ctx, enginetrace.SpanOnce, trace.WithAttributes(enginetrace.SID(sid)))
//	resp, err := eng.Once(ctx, req)     // a C engine's wrapperTraceLog calls become events on span
//	enginetrace.End(span, err)          // asf.code and an error status on failure
//
// Everything here is the OpenTelemetry API only; with a no-op TracerProvider (tracing off)
// the loader starts no spans at all.
package enginetrace

import (
	"context"
	"errors"

	"github.com/athenaserving/asf/libs/aserr"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of the loader's tracer.
const ScopeName = "github.com/athenaserving/asf/services/loader"

// Span names.
const (
	// SpanLicence is the wait for a licence slot (a once request or a session open).
	SpanLicence = "loader.licence"
	// SpanOnce is the engine call of a once request (wrapperExec / wrapperOnceExec).
	SpanOnce = "engine.once"
	// SpanSession covers a session from its open to its end; its frames are children.
	SpanSession = "loader.session"
	// SpanCreate is the engine call opening a session (wrapperCreate).
	SpanCreate = "engine.create"
	// SpanWrite is the engine call of one session frame (wrapperWrite, plus wrapperRead in
	// sync mode).
	SpanWrite = "engine.write"
	// EventResult marks a session output on the session span.
	EventResult = "engine.result"
)

// Attribute keys.
const (
	KeySID        = attribute.Key("asf.sid")
	KeyCapability = attribute.Key("asf.capability")
	KeyEngine     = attribute.Key("asf.engine")
	KeyCode       = attribute.Key("asf.code")
	KeySyncID     = attribute.Key("asf.sync_id")
	KeyStatus     = attribute.Key("asf.status")
	// KeyTraceValue is the value of an engine trace event (C wrapperTraceLog).
	KeyTraceValue = attribute.Key("value")
	// TraceAttrPrefix prefixes the span attribute a C engine's trace key sets
	// (engine.<key> = value, the last value wins).
	TraceAttrPrefix = "engine."
)

// SID is the sid attribute.
func SID(sid string) attribute.KeyValue { return KeySID.String(sid) }

// Tracer returns tp's tracer for the loader, or nil when tp is nil or a no-op provider:
// callers skip every span then (no allocation, no ctx wrapping).
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	if _, off := tp.(noop.TracerProvider); off {
		return nil
	}
	if _, off := tp.(*noop.TracerProvider); off {
		return nil
	}
	return tp.Tracer(ScopeName)
}

// End ends span; a non-nil err sets asf.code (the engine's own code when it gave one),
// records the error and marks the span failed. A cancelled ctx is recorded as such.
func End(span trace.Span, err error) {
	Fail(span, err)
	span.End()
}

// Fail marks span failed with err (no-op for nil).
func Fail(span trace.Span, err error) {
	if err == nil {
		return
	}
	if errors.Is(err, context.Canceled) {
		span.SetStatus(codes.Error, "canceled")
		return
	}
	span.SetAttributes(KeyCode.Int(aserr.CodeOf(err)))
	span.RecordError(err)
	span.SetStatus(codes.Error, aserr.MessageOf(err))
}

type sessionKey struct{}

// WithSession returns ctx carrying span as the session span: the ctx of an engine's
// NewSession has it, so an engine can put what happens outside a frame's engine call (an
// async engine's results from its own threads) on the session.
func WithSession(ctx context.Context, span trace.Span) context.Context {
	return context.WithValue(ctx, sessionKey{}, span)
}

// SessionSpan returns the session span of a NewSession ctx, or nil.
func SessionSpan(ctx context.Context) trace.Span {
	s, _ := ctx.Value(sessionKey{}).(trace.Span)
	return s
}

// TraceLog adds a C engine's trace callback (wrapperTraceLog key/value) to span: an event
// named key with attribute value, and the span attribute engine.<key> = value.
func TraceLog(span trace.Span, key, value string) {
	span.AddEvent(key, trace.WithAttributes(KeyTraceValue.String(value)))
	span.SetAttributes(attribute.String(TraceAttrPrefix+key, value))
}
