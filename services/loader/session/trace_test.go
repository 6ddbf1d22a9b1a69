package session

import (
	"context"
	"errors"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/athenaserving/asf/services/loader/licence"
	"github.com/rs/zerolog"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestSpansParentLicenceFullAndUnsampled(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	e := engine.NewEcho()
	if err := e.Init(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	m := NewManager(e, licence.New(1, 0, nil), Config{Tracer: tp.Tracer("test"), Capability: "cap"}, zerolog.Nop())
	defer m.Close()

	ctx, parent := tp.Tracer("caller").Start(context.Background(), "atom.call")
	if _, err := m.Once(ctx, engine.Request{Tag: "o1", Inputs: text("text", "x")}); err != nil {
		t.Fatal(err)
	}
	parent.End()
	for _, s := range rec.Ended() {
		if (s.Name() == "engine.once" || s.Name() == "loader.licence") && s.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("%s is not a child of the caller's span", s.Name())
		}
	}

	s, err := m.Open(context.Background(), engine.SessionParams{Tag: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Once(context.Background(), engine.Request{Tag: "o2"}); !errors.Is(err, aserr.ErrLicenceFull) {
		t.Fatalf("once with the licence full: %v", err)
	}
	s.Abort()
	full := false
	for _, sp := range rec.Ended() {
		for _, kv := range sp.Attributes() {
			if sp.Name() == "loader.licence" && kv.Key == "asf.code" && kv.Value.AsInt64() == 10110 {
				full = true
			}
		}
	}
	if !full {
		t.Error("no loader.licence span with asf.code 10110")
	}

	// A caller that is not sampled: the session and its frames are not traced.
	n := len(rec.Ended())
	unsampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	uctx, up := unsampled.Tracer("caller").Start(context.Background(), "atom.stream")
	s, err = m.Open(uctx, engine.SessionParams{Tag: "s2"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(uctx, engine.Frame{Status: engine.StatusEnd, Inputs: text("text", "x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := recvAll(t, s); err != nil {
		t.Fatal(err)
	}
	up.End()
	if got := rec.Ended()[n:]; len(got) != 0 {
		t.Errorf("%d spans recorded for an unsampled session, first %s", len(got), got[0].Name())
	}
}
