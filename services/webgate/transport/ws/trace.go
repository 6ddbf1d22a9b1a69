package ws

import (
	"math/rand/v2"
	"net/http"

	"go.opentelemetry.io/otel/trace"
)

// alwaysTracedFrames is how many frames of a sampled session always get a span: a
// session's trace shows at least how it began (ASF traced the first two as well).
const alwaysTracedFrames = 2

// frameSpan starts the span of the frame being handled when the session is sampled: for
// its first two frames always, later at the session's sample rate. nil: no span.
func (s *subSession) frameSpan() trace.Span {
	tr := s.c.h.opts.Tracer
	if tr == nil || !trace.SpanContextFromContext(s.ctx).IsSampled() {
		return nil
	}
	if s.frames > alwaysTracedFrames && rand.Float64() >= s.info.TraceRate {
		return nil
	}
	_, span := tr.Start(s.ctx, "frame")
	return span
}

// traceHeaders are the trace headers the HTTP adapter set on the answer (X-Asf-Trace-Id,
// traceresponse), for the upgrade response, which the WebSocket upgrader writes itself.
func traceHeaders(h http.Header) http.Header {
	const id, resp = "X-Asf-Trace-Id", "Traceresponse"
	if h.Get(id) == "" {
		return nil
	}
	return http.Header{id: h[id], resp: h[resp]}
}
