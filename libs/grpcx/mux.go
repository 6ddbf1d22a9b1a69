package grpcx

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/tracing"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// CallRecorder records the calls a server receives inside long-lived streams (package
// libs/callmux multiplexes many unary calls over one) as NewServer's interceptors record
// a unary call: a server span for a call of a sampled trace (TraceServer's name and
// attributes), recovery of a handler's panic into 11502, the "grpc call" log line, and
// asf_<service>_grpc_calls_total{method,code} and asf_<service>_grpc_call_seconds{method}
// with the trace id as exemplar. So a call counts, logs and traces the same whichever way
// it came. A nil *CallRecorder only recovers panics.
type CallRecorder struct {
	log    zerolog.Logger
	m      *metrics
	tracer *rpcTracer // nil: tracing off
}

// NewCallRecorder returns the recorder of service's calls. Build it after NewServer with
// the same service and reg: it records into the collectors NewServer registered (found by
// registering them again); built first, it registers them and NewServer then panics. tp
// is the service's tracing (nil or off: no spans).
func NewCallRecorder(service string, log zerolog.Logger, reg prometheus.Registerer, tp *tracing.Provider) *CallRecorder {
	m := newMetrics(service, nil)
	m.calls = registered(reg, m.calls)
	m.secs = registered(reg, m.secs)
	r := &CallRecorder{log: log, m: m}
	if tp.On() {
		r.tracer = &rpcTracer{tracer: tp.Tracer("grpcx")}
	}
	return r
}

// registered registers c on reg and returns it, or the equal collector registered
// before; any other registration error panics, as MustRegister does.
func registered[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if old, ok := are.ExistingCollector.(C); ok {
			return old
		}
	}
	panic(err)
}

// Serve runs h as one call of method (its full name, "/asf.loader.v1.Loader/Once"), in
// the order of NewServer's chain: the span (a child of the caller's span context sc, when
// sampled), recovery, the log line, the metrics. A valid sc of an unsampled trace gets no
// span, only its place in ctx, so the call's log lines name its trace. h returns what a
// unary handler returns (a status error or nil); Serve returns h's error, or the 11502
// status of a panic.
func (r *CallRecorder) Serve(ctx context.Context, method string, sc trace.SpanContext, h func(context.Context) error) (err error) {
	if r == nil {
		return recovered(ctx, zerolog.Nop(), method, h)
	}
	var span trace.Span
	if r.tracer != nil && sc.IsValid() {
		ctx, span = r.tracer.start(trace.ContextWithRemoteSpanContext(ctx, sc), method, trace.SpanKindServer)
	}
	defer func() {
		// As in the chain, recovery sits outside the log and metrics interceptors: a call
		// that panicked is logged by the recovery alone and not counted.
		if p := recover(); p != nil {
			err = panicked(r.log, method, p)
		}
		end(span, err, true)
	}()
	start := time.Now()
	err = h(ctx)
	logCall(ctx, r.log, method, start, err)
	r.m.observe(ctx, method, start, err)
	return err
}

// recovered runs h, turning a panic into the status recoverUnary answers with.
func recovered(ctx context.Context, log zerolog.Logger, method string, h func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panicked(log, method, p)
		}
	}()
	return h(ctx)
}

// panicked logs a handler's panic p and returns the status recoverUnary answers with.
func panicked(log zerolog.Logger, method string, p any) error {
	log.Error().Str("method", method).Interface("panic", p).Bytes("stack", debug.Stack()).Msg("grpc handler panic")
	return ToStatus(fmt.Errorf("%s: panic: %v: %w", method, p, aserr.ErrInternal))
}

// CallTracer traces the calls a client sends inside long-lived streams as TraceDial
// traces a unary call. A nil *CallTracer (tracing off) traces nothing and sends no trace
// context.
type CallTracer struct{ t rpcTracer }

// NewCallTracer returns the client-side tracer of tp; nil when tracing is off.
func NewCallTracer(tp *tracing.Provider) *CallTracer {
	if !tp.On() {
		return nil
	}
	return &CallTracer{t: rpcTracer{tracer: tp.Tracer("grpcx")}}
}

// Start starts the client span of method when ctx's trace is sampled and returns the
// span context to send with the call: the span's, or for an unsampled trace its caller's
// (so the server's log lines name the trace, as the traceparent of a unary call does); not
// valid (send none) without a valid span context in ctx. It builds nothing to send: the
// caller encodes the span context (callmux.CallHeader.TraceFields).
func (t *CallTracer) Start(ctx context.Context, method string) (context.Context, trace.Span, trace.SpanContext) {
	if t == nil {
		return ctx, nil, trace.SpanContext{}
	}
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ctx, nil, trace.SpanContext{}
	}
	ctx, span := t.t.start(ctx, method, trace.SpanKindClient)
	if span != nil {
		sc = span.SpanContext()
	}
	return ctx, span, sc
}

// End ends span (nil: nothing) with err's status, as a unary call's client span ends.
func (t *CallTracer) End(span trace.Span, err error) { end(span, err, false) }

// StatusParts splits err into what a gRPC server sends for it: the status code, the
// message, and the ASE code carried in its details (0: none). A nil err is codes.OK.
func StatusParts(err error) (c codes.Code, code int, msg string) {
	if err == nil {
		return codes.OK, 0, ""
	}
	st := status.Convert(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == errDomain {
			code, _ = strconv.Atoi(info.GetMetadata()["code"])
			break
		}
	}
	return st.Code(), code, st.Message()
}

// StatusFromParts rebuilds the status error StatusParts split: the same gRPC code and
// message, and the ASE code in the details ToStatus writes (when code is not 0). It
// returns nil for codes.OK.
func StatusFromParts(c codes.Code, code int, msg string) error {
	switch {
	case c == codes.OK:
		return nil
	case code == 0:
		return status.Error(c, msg)
	}
	p := status.Convert(ToStatus(aserr.Received(code, msg))).Proto() // ToStatus's details
	p.Code = int32(c)
	return status.ErrorProto(p)
}
