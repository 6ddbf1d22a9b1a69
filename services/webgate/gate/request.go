package gate

import (
	"context"
	"time"

	"github.com/athenaserving/asf/libs/capability"
	"github.com/athenaserving/asf/services/webgate/ase"
	"github.com/athenaserving/asf/services/webgate/auth"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
)

// Request kinds, the kind label of the request metrics.
const (
	KindOnce      = "once"
	KindStream    = "stream"
	KindMultiplex = "multiplex" // the socket; its sub-sessions count as stream
	KindOIP       = "oip"
)

// Request is the state of one request or WebSocket session along the adapters: the HTTP
// adapter's router creates it (NewRequest), authorisation sets App, the endpoint fills
// Code, the adapter's metrics read it after the endpoint returns.
type Request struct {
	// Capability is the resolved capability id.
	Capability string
	// Schema is the capability's schema, nil when none is configured for it.
	Schema *capability.Schema
	// App is the authenticated app, nil when authentication is off.
	App *auth.App
	// SID is the session id assigned to this request or WebSocket session.
	SID string
	// Start is when the request entered the gateway.
	Start time.Time
	// Stream is true for a WebSocket session.
	Stream bool
	// Multiplex is true for a WebSocket with ?stream_mode=multiplex.
	Multiplex bool
	// WebAPI is true for a request on a capability's WebAPI 2.0 route: it is decoded and
	// answered in the WebAPI 2.0 envelope through the schema's mapping.
	WebAPI bool
	// OIP is the Open Inference Protocol action (model, ready, infer) or "".
	OIP string
	// Code is the final ASE code of the request or session (or the HTTP status of a
	// gateway-level refusal: 401, 403, 429).
	Code int
	// Log is the request logger; it carries sid and capability.
	Log zerolog.Logger
	// ClientIP is the client's address (the TCP peer).
	ClientIP string
	// Span is the request's span (a WebSocket connection's: the session), nil when
	// tracing is off. The HTTP adapter's router starts it and its observer ends it.
	Span trace.Span
	// TraceRate is the sample rate that decided the request's trace (the capability's
	// meta.trace_sample_rate, else trace-sample-rate): a sampled session traces its
	// frames after the first two at it.
	TraceRate float64

	kick chan error // a lowered app limit ends the connection
}

// Kick asks the request's WebSocket connection to end with err; it does not block.
func (r *Request) Kick(err error) {
	select {
	case r.kick <- err:
	default:
	}
}

// Kicked delivers the error of a Kick.
func (r *Request) Kicked() <-chan error { return r.kick }

// Kind is the request's kind label.
func (r *Request) Kind() string {
	switch {
	case r.OIP != "":
		return KindOIP
	case r.Multiplex:
		return KindMultiplex
	case r.Stream:
		return KindStream
	}
	return KindOnce
}

// HTTPStatus maps an ASE code to the HTTP status of a once response, the capability's
// codeMap first.
func (r *Request) HTTPStatus(code int) int {
	if r.Schema != nil {
		if st, ok := r.Schema.HTTPStatus(code); ok {
			return st
		}
	}
	return ase.HTTPStatus(code)
}

type requestKey struct{}

// WithRequest returns ctx carrying req.
func WithRequest(ctx context.Context, req *Request) context.Context {
	return context.WithValue(ctx, requestKey{}, req)
}

// RequestFrom returns the Request of ctx, or nil.
func RequestFrom(ctx context.Context) *Request {
	req, _ := ctx.Value(requestKey{}).(*Request)
	return req
}
