package ws

import (
	"encoding/binary"
	"net/http"

	"go.opentelemetry.io/otel/trace"
)

// alwaysTracedFrames is how many frames of a sampled session always get a span: a
// session's trace shows at least how it began (ASF traced the first two as well).
const alwaysTracedFrames = 2

// frameSpan starts the span of the frame being handled when the session is sampled: for
// its first two frames always, later at the session's sample rate (frameSampled). nil: no
// span.
func (s *subSession) frameSpan() trace.Span {
	tr := s.c.h.opts.Tracer
	if tr == nil {
		return nil
	}
	sc := trace.SpanContextFromContext(s.ctx)
	if !sc.IsSampled() {
		return nil
	}
	if s.frames > alwaysTracedFrames && !frameSampled(sc.TraceID(), s.frames, s.info.TraceRate) {
		return nil
	}
	_, span := tr.Start(s.ctx, "frame")
	return span
}

// frameSampled decides whether frame n (1, 2, ...) of a sampled session of trace id gets a
// span at rate. The decision is a function of the trace id and n, so a session replayed
// with the same trace id (a client's traceparent) traces the same frames; it is drawn from
// a splitmix64 sequence seeded by the trace id, so the frames of one trace are spread at
// rate whatever the trace id's own draw that sampled the session.
func frameSampled(id trace.TraceID, n int, rate float64) bool {
	switch {
	case rate >= 1:
		return true
	case rate <= 0:
		return false
	}
	x := binary.BigEndian.Uint64(id[:8]) ^ binary.BigEndian.Uint64(id[8:])
	x += uint64(n) * 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	x ^= x >> 31
	return x>>11 < uint64(rate*(1<<53))
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
