package tracing

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/credentials"
)

// Config holds the trace export keys; services embed it in their Config (cfgload reads
// the fields of an embedded struct as keys of the service).
type Config struct {
	TraceEndpoint string `cfg:"trace-endpoint" addrs:"true" help:"OTLP/gRPC collector host:port that spans are exported to (Jaeger, an OpenTelemetry collector); empty: tracing off"`
	TraceCAFile   string `cfg:"trace-ca-file" help:"PEM CA bundle of the trace collector: export over TLS verified against it (empty: plaintext)"`
}

// SampleConfig is the edge's sampling key (webgate only: downstream services follow the
// decision carried by the trace context).
type SampleConfig struct {
	TraceSampleRate float64 `cfg:"trace-sample-rate" help:"share (0-1) of requests and sessions traced when their capability sets no meta.trace_sample_rate"`
}

// Check validates the sample rate.
func (c SampleConfig) Check() error {
	if c.TraceSampleRate < 0 || c.TraceSampleRate > 1 {
		return fmt.Errorf("trace-sample-rate %v must be between 0 and 1", c.TraceSampleRate)
	}
	return nil
}

// Options tunes New; zero fields take the defaults noted.
type Options struct {
	// Root decides for spans without a parent. Default: never (a downstream service
	// records only what a traced caller asked for). The edge passes RateSampler.
	Root sdktrace.Sampler
	// Exporter replaces the OTLP exporter (tests). With it, tracing is on whatever
	// Config.TraceEndpoint says.
	Exporter sdktrace.SpanExporter
	// Edge marks the public edge: a client's traceparent gives the trace id and the parent
	// of its span, but Root decides whether it is recorded, so a client cannot make the
	// suite record more than the configured rates. Elsewhere a remote parent's sampled flag
	// decides (parent-based).
	Edge bool
	// BatchTimeout is the longest a finished span waits before export (default 1 s).
	BatchTimeout time.Duration
}

// Provider is one service's tracer provider and propagator. It is injected, never
// installed as the process's global, so several services live in one process (tests) each
// with its own. A Provider built with tracing off hands out a no-op tracer and On is false:
// callers on hot paths test On and skip the span entirely (a no-op span still costs a
// context allocation).
type Provider struct {
	on      bool
	service string
	tp      trace.TracerProvider
	sdk     *sdktrace.TracerProvider // nil when off
	prop    propagation.TextMapPropagator
	once    sync.Once
	err     error
}

// Propagator is the propagator every service uses: W3C Trace Context (traceparent,
// tracestate).
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Off is a Provider with tracing off.
func Off() *Provider {
	return &Provider{tp: noop.NewTracerProvider(), prop: Propagator}
}

// New builds the provider of service (the resource's service.name: "webgate", "atom",
// "lbclient", "loader", "polaris"). An empty TraceEndpoint and no Options.Exporter give Off().
// The exporter connects lazily: a collector that is down costs dropped spans, never a
// failed start.
func New(cfg Config, service string, opts Options) (*Provider, error) {
	exp := opts.Exporter
	if exp == nil {
		if cfg.TraceEndpoint == "" {
			return Off(), nil
		}
		eo := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(cfg.TraceEndpoint)}
		if cfg.TraceCAFile != "" {
			pem, err := os.ReadFile(cfg.TraceCAFile)
			if err != nil {
				return nil, fmt.Errorf("trace-ca-file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("trace-ca-file %s: no PEM certificate", cfg.TraceCAFile)
			}
			eo = append(eo, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})))
		} else {
			eo = append(eo, otlptracegrpc.WithInsecure())
		}
		var err error
		// New only configures the client; it dials without blocking.
		if exp, err = otlptracegrpc.New(context.Background(), eo...); err != nil {
			return nil, fmt.Errorf("trace exporter %s: %w", cfg.TraceEndpoint, err)
		}
	}
	root := opts.Root
	if root == nil {
		root = sdktrace.NeverSample()
	}
	if opts.BatchTimeout <= 0 {
		opts.BatchTimeout = time.Second
	}
	res := resource.NewSchemaless(attribute.String("service.name", service))
	sampler := sdktrace.ParentBased(root)
	if opts.Edge {
		sampler = sdktrace.ParentBased(root, sdktrace.WithRemoteParentSampled(root), sdktrace.WithRemoteParentNotSampled(root))
	}
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sampler),
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(opts.BatchTimeout)),
	)
	return &Provider{on: true, service: service, tp: sdk, sdk: sdk, prop: Propagator}, nil
}

// On reports whether spans are exported.
func (p *Provider) On() bool { return p != nil && p.on }

// TracerProvider is the provider to hand to instrumentation.
func (p *Provider) TracerProvider() trace.TracerProvider {
	if p == nil {
		return noop.NewTracerProvider()
	}
	return p.tp
}

// Tracer returns the service's tracer, named after its instrumentation scope.
func (p *Provider) Tracer(scope string) trace.Tracer {
	return p.TracerProvider().Tracer("github.com/athenaserving/asf/" + scope)
}

// Propagator is the provider's propagator (Propagator).
func (p *Provider) Propagator() propagation.TextMapPropagator { return Propagator }

// ForceFlush exports every finished span now (tests read them back right after).
func (p *Provider) ForceFlush(ctx context.Context) error {
	if p == nil || p.sdk == nil {
		return nil
	}
	return p.sdk.ForceFlush(ctx)
}

// Shutdown exports the spans still buffered and stops the exporter, within ctx. It is
// idempotent; a service calls it last in its Shutdown, after everything that may still
// end a span.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil || p.sdk == nil {
		return nil
	}
	p.once.Do(func() {
		if err := p.sdk.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
			p.err = fmt.Errorf("trace provider shutdown: %w", err)
		}
	})
	return p.err
}

type rateKey struct{}

// WithSampleRate returns ctx carrying the sample rate RateSampler applies to a root span
// started in it (the capability's meta.trace_sample_rate).
func WithSampleRate(ctx context.Context, rate float64) context.Context {
	return context.WithValue(ctx, rateKey{}, rate)
}

// RateSampler samples a root span with the rate carried by its context (WithSampleRate),
// else def. The decision is a function of the trace id (as TraceIDRatioBased), so every
// service that re-derives it agrees.
func RateSampler(def float64) sdktrace.Sampler { return rateSampler{def: def} }

type rateSampler struct{ def float64 }

func (s rateSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	rate := s.def
	if r, ok := p.ParentContext.Value(rateKey{}).(float64); ok {
		rate = r
	}
	res := sdktrace.SamplingResult{Decision: sdktrace.Drop, Tracestate: trace.SpanContextFromContext(p.ParentContext).TraceState()}
	if Sampled(p.TraceID, rate) {
		res.Decision = sdktrace.RecordAndSample
	}
	return res
}

func (s rateSampler) Description() string { return fmt.Sprintf("RateSampler{%g}", s.def) }

// Sampled reports whether a trace id falls within rate (0: never, 1: always).
func Sampled(id trace.TraceID, rate float64) bool {
	switch {
	case rate >= 1:
		return true
	case rate <= 0:
		return false
	}
	bound := uint64(rate * (1 << 63))
	return binary.BigEndian.Uint64(id[8:16])>>1 < bound
}

// TraceResponse formats the W3C Trace Context `traceresponse` header of sc:
// 00-<trace id>-<span id>-<flags>.
// Its bytes 3 to 35 are the trace id in hex (TraceResponseID), so a caller that needs both
// builds one string.
func TraceResponse(sc trace.SpanContext) string {
	var b [55]byte
	copy(b[:], "00-")
	tid, sid := sc.TraceID(), sc.SpanID()
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	copy(b[52:], "-00")
	if sc.IsSampled() {
		b[54] = '1'
	}
	return string(b[:])
}

// TraceResponseID is the trace id (32 hex digits) of a TraceResponse string, without a copy.
func TraceResponseID(tr string) string { return tr[3:35] }

// Use wraps a tracer provider owned elsewhere (a test's recorder, an embedding program's
// provider): On is true unless tp is nil, and Shutdown leaves tp alone.
func Use(tp trace.TracerProvider) *Provider {
	if tp == nil {
		return Off()
	}
	return &Provider{on: true, tp: tp, prop: Propagator}
}
