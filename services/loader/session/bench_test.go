package session

import (
	"context"
	"testing"

	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/athenaserving/asf/services/loader/enginetrace"
	"github.com/athenaserving/asf/services/loader/licence"
	"github.com/rs/zerolog"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// tracerConfig is a manager config tracing with an SDK provider that samples everything
// (on) or nothing (unsampled: spans are started but not recorded).
func tracerConfig(b *testing.B, sample bool) Config {
	s := sdktrace.NeverSample()
	if sample {
		s = sdktrace.AlwaysSample()
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(s)) // no exporter: the cost of the spans themselves
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return Config{Tracer: tp.Tracer("bench")}
}

func benchManager(b *testing.B, cfg Config) *Manager {
	b.Helper()
	e := engine.NewEcho()
	if err := e.Init(context.Background(), nil); err != nil {
		b.Fatal(err)
	}
	m := NewManager(e, licence.New(64, 0, nil), cfg, zerolog.Nop())
	b.Cleanup(m.Close)
	return m
}

// benchOnce measures one once request through the manager: licence slot, engine call,
// output check.
func benchOnce(b *testing.B, m *Manager) {
	req := engine.Request{Tag: "bench", Inputs: []engine.Payload{{Meta: engine.Meta{Name: "text"}, Data: make([]byte, 1024)}}}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Once(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// benchFrames measures one session frame written and its output received.
func benchFrames(b *testing.B, m *Manager) {
	ctx := context.Background()
	s, err := m.Open(ctx, engine.SessionParams{Tag: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Abort()
	in := []engine.Payload{{Meta: engine.Meta{Name: "text"}, Data: make([]byte, 1024)}}
	var id int32
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := s.Write(ctx, engine.Frame{SyncID: id, Status: engine.StatusContinue, Inputs: in}); err != nil {
			b.Fatal(err)
		}
		id++
		if _, err := s.Recv(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkManagerOnce(b *testing.B) {
	b.Run("off", func(b *testing.B) { benchOnce(b, benchManager(b, Config{})) })
	b.Run("noop-provider", func(b *testing.B) {
		benchOnce(b, benchManager(b, Config{Tracer: enginetrace.Tracer(noop.NewTracerProvider())}))
	})
	b.Run("unsampled", func(b *testing.B) { benchOnce(b, benchManager(b, tracerConfig(b, false))) })
	b.Run("sampled", func(b *testing.B) { benchOnce(b, benchManager(b, tracerConfig(b, true))) })
}

func BenchmarkManagerFrame(b *testing.B) {
	b.Run("off", func(b *testing.B) { benchFrames(b, benchManager(b, Config{})) })
	b.Run("unsampled", func(b *testing.B) { benchFrames(b, benchManager(b, tracerConfig(b, false))) })
	b.Run("sampled", func(b *testing.B) { benchFrames(b, benchManager(b, tracerConfig(b, true))) })
}
