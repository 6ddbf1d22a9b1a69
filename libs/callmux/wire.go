package callmux

import (
	"time"

	"google.golang.org/grpc/codes"
)

// CallHeader is what travels with a call on a stream besides its request.
type CallHeader struct {
	// ID is the caller's id of the call, unique on its stream and never 0.
	ID uint64
	// Timeout is what remained of the caller's deadline when it sent the call (0: none).
	Timeout time.Duration
	// Trace is the W3C trace context of the caller's span (nil: none).
	Trace map[string]string
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
	GetCancel() bool
}

// CallHeaderOf reads the header of a generated call message.
func CallHeaderOf(m CallMessage) CallHeader {
	return CallHeader{ID: m.GetId(), Timeout: time.Duration(m.GetTimeoutNs()), Trace: m.GetTraceContext(), Cancel: m.GetCancel()}
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
