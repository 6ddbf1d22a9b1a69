package jaegertest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/athenaserving/asf/tests/jaegertest"
)

// TestSpanRoundTrip exports a parent and a child span over OTLP/gRPC, as the services do,
// and reads them back from the query API with their service, operations and parentage.
func TestSpanRoundTrip(t *testing.T) {
	j := jaegertest.Start(t)

	ctx := t.Context()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(j.Endpoint()), otlptracegrpc.WithInsecure())
	require.NoError(t, err)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "jaegertest"))),
	)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	tracer := tp.Tracer("jaegertest")
	pctx, parent := tracer.Start(ctx, "parent")
	_, child := tracer.Start(pctx, "child")
	child.SetAttributes(attribute.String("asf.sid", "sid-1"))
	child.End()
	parent.End()
	require.NoError(t, tp.ForceFlush(ctx))

	traceID := parent.SpanContext().TraceID().String()
	tr := j.WaitTrace(t, traceID, 15*time.Second, jaegertest.SpanCount(2))
	require.Len(t, tr.Spans, 2, tr.String())
	require.Equal(t, traceID, tr.ID)
	require.Equal(t, []string{"jaegertest"}, tr.Services())

	p, c := tr.Find("jaegertest", "parent"), tr.Find("jaegertest", "child")
	require.NotNil(t, p, tr.String())
	require.NotNil(t, c, tr.String())
	require.Equal(t, parent.SpanContext().SpanID().String(), p.SpanID)
	require.Empty(t, p.ParentID, "the parent is the root span")
	require.Equal(t, child.SpanContext().SpanID().String(), c.SpanID)
	require.Equal(t, p, tr.Parent(c))
	require.Equal(t, "sid-1", c.Tags["asf.sid"])

	services, err := j.Services(ctx)
	require.NoError(t, err)
	require.Contains(t, services, "jaegertest")

	_, err = j.Trace(ctx, "0123456789abcdef0123456789abcdef")
	require.ErrorIs(t, err, jaegertest.ErrNotFound)
}
