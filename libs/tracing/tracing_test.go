package tracing

import (
	"bytes"
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestOffIsNoop(t *testing.T) {
	p, err := New(Config{}, "atom", Options{})
	require.NoError(t, err)
	assert.False(t, p.On())
	_, span := p.Tracer("x").Start(context.Background(), "s")
	assert.False(t, span.SpanContext().IsValid())
	require.NoError(t, p.Shutdown(context.Background()))
}

func TestSampledBounds(t *testing.T) {
	var id trace.TraceID
	id[8] = 0xff
	assert.True(t, Sampled(id, 1))
	assert.False(t, Sampled(id, 0))
	assert.False(t, Sampled(id, 0.5)) // high bits set: above half
	id[8] = 0x01
	assert.True(t, Sampled(id, 0.5))
}

func TestRateFromContextDecidesRoot(t *testing.T) {
	rec := tracetest.NewInMemoryExporter()
	p, err := New(Config{}, "webgate", Options{Root: RateSampler(0), Exporter: rec})
	require.NoError(t, err)
	tr := p.Tracer("t")
	_, s := tr.Start(context.Background(), "default-rate")
	assert.False(t, s.SpanContext().IsSampled(), "global default 0")
	s.End()
	ctx, s := tr.Start(WithSampleRate(context.Background(), 1), "capability-rate")
	assert.True(t, s.SpanContext().IsSampled(), "the capability's rate wins")
	_, child := tr.Start(ctx, "child")
	assert.True(t, child.SpanContext().IsSampled(), "children follow their parent")
	child.End()
	s.End()
	require.NoError(t, p.ForceFlush(context.Background()))
	assert.Len(t, rec.GetSpans(), 2)
	require.NoError(t, p.Shutdown(context.Background()))
}

func TestDownstreamRecordsOnlyTracedCallers(t *testing.T) {
	rec := tracetest.NewInMemoryExporter()
	p, err := New(Config{}, "lbclient", Options{Exporter: rec})
	require.NoError(t, err)
	_, s := p.Tracer("t").Start(context.Background(), "root")
	assert.False(t, s.SpanContext().IsSampled())

	up := sdktrace.NewTracerProvider()
	uctx, us := up.Tracer("u").Start(context.Background(), "caller")
	carried := Inject(uctx)
	require.Contains(t, carried, "traceparent")
	ctx := Extract(context.Background(), carried)
	_, ds := p.Tracer("t").Start(ctx, "pick")
	assert.True(t, ds.SpanContext().IsSampled())
	assert.Equal(t, us.SpanContext().TraceID(), ds.SpanContext().TraceID())
	assert.Nil(t, Inject(context.Background()))
}

func TestLogAndExemplar(t *testing.T) {
	var buf bytes.Buffer
	log := zerolog.New(&buf)
	l0 := WithLog(context.Background(), log)
	l0.Info().Msg("x")
	assert.NotContains(t, buf.String(), LogField)

	p, err := New(Config{}, "webgate", Options{Root: RateSampler(1), Exporter: tracetest.NewInMemoryExporter()})
	require.NoError(t, err)
	ctx, s := p.Tracer("t").Start(context.Background(), "req")
	defer s.End()
	id := s.SpanContext().TraceID().String()
	l1 := WithLog(ctx, log)
	l1.Info().Msg("y")
	assert.Contains(t, buf.String(), `"trace_id":"`+id+`"`)

	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Buckets: []float64{1}})
	Observe(ctx, h, 0.5)
	var m dto.Metric
	require.NoError(t, h.Write(&m))
	ex := m.GetHistogram().GetBucket()[0].GetExemplar()
	require.NotNil(t, ex)
	assert.Equal(t, id, ex.GetLabel()[0].GetValue())
}

func TestTraceResponse(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})
	tr := TraceResponse(sc)
	assert.Equal(t, "00-01000000000000000000000000000000-0200000000000000-01", tr)
	assert.Equal(t, sc.TraceID().String(), TraceResponseID(tr))
	unsampled := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{15: 0xff}, SpanID: trace.SpanID{7: 0xab}})
	assert.Equal(t, "00-000000000000000000000000000000ff-00000000000000ab-00", TraceResponse(unsampled))
}

func TestSampleRateChecked(t *testing.T) {
	assert.Error(t, SampleConfig{TraceSampleRate: 1.5}.Check())
	assert.NoError(t, SampleConfig{TraceSampleRate: 0.01}.Check())
}

// TestPackCarriesWhatTheW3CMapCarries: a span context without tracestate packed into four
// fields and unpacked is the one the W3C map carries (remote, same ids and flags); one
// with tracestate, or none, does not pack.
func TestPackCarriesWhatTheW3CMapCarries(t *testing.T) {
	tid := trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	sid := trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	for _, flags := range []trace.TraceFlags{0, trace.FlagsSampled, trace.FlagsSampled | trace.FlagsRandom, 0xff} {
		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags})
		hi, lo, span, f, ok := Pack(sc)
		require.True(t, ok)
		assert.Equal(t, uint64(0x4bf92f3577b34da6), hi)
		assert.Equal(t, uint64(0xa3ce929d0e0e4736), lo)
		assert.Equal(t, uint64(0x00f067aa0ba902b7), span)
		got := Unpack(hi, lo, span, f)
		assert.True(t, got.IsRemote())
		assert.True(t, got.Equal(SpanContextOf(InjectSpanContext(sc))), "flags %v: %v", flags, got)
		assert.Equal(t, flags.IsSampled(), got.IsSampled())
	}
	ts, err := trace.ParseTraceState("vendor=opaque")
	require.NoError(t, err)
	withState := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceState: ts})
	_, _, _, _, ok := Pack(withState)
	assert.False(t, ok, "tracestate does not fit")
	assert.Equal(t, "vendor=opaque", SpanContextOf(InjectSpanContext(withState)).TraceState().String())
	_, _, _, _, ok = Pack(trace.SpanContext{})
	assert.False(t, ok)
	assert.False(t, Unpack(0, 0, 0, 0).IsValid())
	assert.False(t, Unpack(1, 2, 0, 1).IsValid(), "no span id")
	assert.Nil(t, InjectSpanContext(trace.SpanContext{}))
	assert.False(t, SpanContextOf(map[string]string{"traceparent": "00-bad"}).IsValid())
}
