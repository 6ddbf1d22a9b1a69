package grpcx

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/tracing"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// TestStatusPartsRebuildTheStatus: the parts of a status rebuild it exactly, so a call
// answered inside a stream fails as its unary call fails.
func TestStatusPartsRebuildTheStatus(t *testing.T) {
	for _, err := range []error{
		ToStatus(aserr.ErrLicenceFull),
		ToStatus(errors.New("plain")),
		status.Error(codes.Unavailable, "transport is closing"),
		errors.New("not a status"),
	} {
		c, code, msg := StatusParts(err)
		got := StatusFromParts(c, code, msg)
		require.True(t, proto.Equal(status.Convert(err).Proto(), status.Convert(got).Proto()), "%v → %v", err, got)
	}
	c, code, msg := StatusParts(nil)
	require.Equal(t, codes.OK, c)
	require.NoError(t, StatusFromParts(c, code, msg))
}

func FuzzStatusParts(f *testing.F) {
	f.Add(uint32(14), 10222, "network error")
	f.Add(uint32(2), 0, "")
	f.Fuzz(func(t *testing.T, c uint32, code int, msg string) {
		if !utf8.ValidString(msg) {
			return // a gRPC status message is UTF-8 on the wire
		}
		err := StatusFromParts(codes.Code(c), code, msg)
		gc, gcode, gmsg := StatusParts(err)
		if c == 0 {
			require.NoError(t, err)
			return
		}
		require.Equal(t, codes.Code(c), gc)
		require.Equal(t, code, gcode)
		require.Equal(t, msg, gmsg)
	})
}

// TestCallRecorderSharesTheServersMetrics: a recorder built after NewServer counts into
// the server's asf_<service>_grpc_calls_total.
func TestCallRecorderSharesTheServersMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := NewServer("mux", zerolog.Nop(), reg)
	defer s.Stop()
	r := NewCallRecorder("mux", zerolog.Nop(), reg, nil)
	require.Error(t, r.Serve(t.Context(), "/x.Y/Z", trace.SpanContext{}, func(context.Context) error { return ToStatus(aserr.ErrLicenceFull) }))
	n, err := testutil.GatherAndCount(reg, "asf_mux_grpc_calls_total")
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

// remoteSC is a caller's span context as a stream's call carries it.
func remoteSC(t *testing.T, flags trace.TraceFlags, state string) trace.SpanContext {
	t.Helper()
	ts, err := trace.ParseTraceState(state)
	require.NoError(t, err)
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0xab, 1}, SpanID: trace.SpanID{0xcd, 2},
		TraceFlags: flags, TraceState: ts, Remote: true})
}

// TestCallRecorderContinuesTheCallersTrace: a call of an unsampled trace gets no span but
// its trace id in ctx and in the "grpc call" log line; a call of a sampled trace gets a
// server span, a child of the caller's, that keeps its tracestate; a call without a span
// context gets neither.
func TestCallRecorderContinuesTheCallersTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp, err := tracing.New(tracing.Config{}, "server", tracing.Options{Exporter: exp})
	require.NoError(t, err)
	defer func() { _ = tp.Shutdown(context.Background()) }()
	var buf bytes.Buffer
	r := NewCallRecorder("mux", zerolog.New(&buf).Level(zerolog.DebugLevel), prometheus.NewRegistry(), tp)
	serve := func(sc trace.SpanContext) (seen trace.SpanContext) {
		buf.Reset()
		require.NoError(t, r.Serve(t.Context(), "/x.Y/Z", sc, func(ctx context.Context) error {
			seen = trace.SpanContextFromContext(ctx)
			return nil
		}))
		return seen
	}

	unsampled := remoteSC(t, 0, "")
	seen := serve(unsampled)
	require.True(t, seen.Equal(unsampled), "%v", seen)
	require.Contains(t, buf.String(), `"trace_id":"`+unsampled.TraceID().String()+`"`)
	require.NoError(t, tp.ForceFlush(t.Context()))
	require.Empty(t, exp.GetSpans())

	sampled := remoteSC(t, trace.FlagsSampled, "vendor=opaque")
	seen = serve(sampled)
	require.Equal(t, sampled.TraceID(), seen.TraceID())
	require.NotEqual(t, sampled.SpanID(), seen.SpanID(), "the server span's")
	require.Equal(t, "vendor=opaque", seen.TraceState().String())
	require.Contains(t, buf.String(), `"trace_id":"`+sampled.TraceID().String()+`"`)
	require.NoError(t, tp.ForceFlush(t.Context()))
	spans := exp.GetSpans()
	require.Len(t, spans, 1)
	require.Equal(t, "x.Y/Z", spans[0].Name)
	require.Equal(t, trace.SpanKindServer, spans[0].SpanKind)
	require.True(t, spans[0].Parent.Equal(sampled), "%v", spans[0].Parent)

	exp.Reset()
	require.False(t, serve(trace.SpanContext{}).IsValid())
	require.NotContains(t, buf.String(), tracing.LogField)
	require.NoError(t, tp.ForceFlush(t.Context()))
	require.Empty(t, exp.GetSpans())
}

// TestCallTracerStartReturnsTheContextToSend: the caller's span context for an unsampled
// trace (no span), the new client span's for a sampled one (tracestate kept), none
// without a span context or with tracing off.
func TestCallTracerStartReturnsTheContextToSend(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp, err := tracing.New(tracing.Config{}, "client", tracing.Options{Exporter: exp})
	require.NoError(t, err)
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ct := NewCallTracer(tp)

	unsampled := remoteSC(t, 0, "")
	_, span, sc := ct.Start(trace.ContextWithSpanContext(t.Context(), unsampled), "/x.Y/Z")
	require.Nil(t, span)
	require.True(t, sc.Equal(unsampled))

	sampled := remoteSC(t, trace.FlagsSampled, "vendor=opaque")
	ctx, span, sc := ct.Start(trace.ContextWithRemoteSpanContext(t.Context(), sampled), "/x.Y/Z")
	require.NotNil(t, span)
	require.True(t, sc.Equal(span.SpanContext()))
	require.True(t, sc.Equal(trace.SpanContextFromContext(ctx)))
	require.Equal(t, sampled.TraceID(), sc.TraceID())
	require.True(t, sc.IsSampled())
	require.Equal(t, "vendor=opaque", sc.TraceState().String())
	ct.End(span, nil)
	require.NoError(t, tp.ForceFlush(t.Context()))
	spans := exp.GetSpans()
	require.Len(t, spans, 1)
	require.Equal(t, trace.SpanKindClient, spans[0].SpanKind)
	require.Equal(t, sampled.SpanID(), spans[0].Parent.SpanID())

	_, span, sc = ct.Start(t.Context(), "/x.Y/Z")
	require.Nil(t, span)
	require.False(t, sc.IsValid())
	_, span, sc = (*CallTracer)(nil).Start(trace.ContextWithSpanContext(t.Context(), sampled), "/x.Y/Z")
	require.Nil(t, span)
	require.False(t, sc.IsValid())
}
