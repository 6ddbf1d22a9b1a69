package callmux

import (
	"time"

	"github.com/athenaserving/asf/libs/tracing"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
)

// CallHeader is what travels with a call on a stream besides its request.
type CallHeader struct {
	// ID is the caller's id of the call, unique on its stream and never 0.
	ID uint64
	// Timeout is what remained of the caller's deadline when it sent the call (0: none).
	Timeout time.Duration
	// Trace is the span context of the caller's span, tracestate included (not valid:
	// none). TraceFields puts it in a call message, CallHeaderOf reads it back.
	Trace trace.SpanContext
	// Cancel marks a message that cancels call ID instead of carrying a call.
	Cancel bool
}

// ReplyHeader is what travels with a reply besides its response.
type ReplyHeader struct {
	// ID is the id of the call answered (0: a reply that answers no call, such as Drain).
	ID uint64
	// Status, Code and Message are the call's error as grpcx.StatusParts splits it:
	// the gRPC status code (codes.OK: success), the ASE code of its details (0: none) and
	// its message.
	Status  codes.Code
	Code    int
	Message string
	// Drain: the server is shutting down; send no more calls on this stream.
	Drain bool
	// NotRun: the call arrived after Drain and was not run; send it elsewhere.
	NotRun bool
}

// ClientWire builds and reads a service's envelope messages on the caller's side: C is
// the message carrying a call (or a cancel), R the one carrying a reply.
type ClientWire[Req, Resp, C, R any] struct {
	// NewCall builds the message of call h carrying req (nil for a cancel).
	NewCall func(h CallHeader, req *Req) *C
	// ReadReply returns a reply's header and response.
	ReadReply func(r *R) (ReplyHeader, *Resp)
	// Size, when set, is the size of req that Options.MaxCallBytes bounds (the payload
	// bytes it carries is enough).
	Size func(req *Req) int
}

// ServerWire reads and builds a service's envelope messages on the server's side.
type ServerWire[Req, Resp, C, R any] struct {
	// ReadCall returns a call message's header and request.
	ReadCall func(c *C) (CallHeader, *Req)
	// NewReply builds the message of reply h carrying resp (nil on an error).
	NewReply func(h ReplyHeader, resp *Resp) *R
}

// CallMessage is what a service's generated call message gives CallHeaderOf: its fields
// named as in loaderpb.OnceCall and atompb.CallRequest.
type CallMessage interface {
	GetId() uint64
	GetTimeoutNs() int64
	GetTraceContext() map[string]string
	GetTraceIdHi() uint64
	GetTraceIdLo() uint64
	GetSpanId() uint64
	GetTraceFlags() uint32
	GetCancel() bool
}

// CallHeaderOf reads the header of a generated call message. Its span context comes from
// the fixed-size trace fields when their trace id is not zero, else from the W3C map
// trace_context (a span context with tracestate, or a caller that sends only the map).
func CallHeaderOf(m CallMessage) CallHeader {
	h := CallHeader{ID: m.GetId(), Timeout: time.Duration(m.GetTimeoutNs()), Cancel: m.GetCancel()}
	if hi, lo := m.GetTraceIdHi(), m.GetTraceIdLo(); hi != 0 || lo != 0 {
		h.Trace = tracing.Unpack(hi, lo, m.GetSpanId(), m.GetTraceFlags())
	} else if tc := m.GetTraceContext(); len(tc) > 0 {
		h.Trace = tracing.SpanContextOf(tc)
	}
	return h
}

// TraceFields is h.Trace as a call message's trace fields: a span context without
// tracestate in the fixed-size fields (trace_id_hi, trace_id_lo, span_id, trace_flags),
// so an unsampled call costs no allocation for it; one with tracestate in the W3C map tc
// (the other fields 0); none: all zero. A sampled span context travels in the map as well
// (a receiver reads the fields first), so that while a hop is being upgraded a server that
// knows only the map still continues the sampled traces.
func (h CallHeader) TraceFields() (traceHi, traceLo, span uint64, flags uint32, tc map[string]string) {
	if traceHi, traceLo, span, flags, ok := tracing.Pack(h.Trace); ok {
		if h.Trace.IsSampled() {
			tc = tracing.InjectSpanContext(h.Trace)
		}
		return traceHi, traceLo, span, flags, tc
	}
	return 0, 0, 0, 0, tracing.InjectSpanContext(h.Trace)
}

// ReplyMessage is what a service's generated reply message gives ReplyHeaderOf: its
// fields named as in loaderpb.OnceReply and atompb.CallReply.
type ReplyMessage interface {
	GetId() uint64
	GetGrpcCode() uint32
	GetCode() int32
	GetMessage() string
	GetDrain() bool
	GetNotRun() bool
}

// ReplyHeaderOf reads the header of a generated reply message.
func ReplyHeaderOf(m ReplyMessage) ReplyHeader {
	return ReplyHeader{ID: m.GetId(), Status: codes.Code(m.GetGrpcCode()), Code: int(m.GetCode()), Message: m.GetMessage(),
		Drain: m.GetDrain(), NotRun: m.GetNotRun()}
}
