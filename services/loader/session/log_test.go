package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/athenaserving/asf/libs/tracing"
	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/athenaserving/asf/services/loader/licence"
	"github.com/rs/zerolog"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// logBuffer is a zerolog writer safe for the session goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// line returns the fields of the first log line with message msg, or nil.
func (l *logBuffer) line(t *testing.T, msg string) map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("log line %q: %v", s, err)
		}
		if m["message"] == msg {
			return m
		}
	}
	return nil
}

// TestSessionLogCarriesTraceID: a session's log lines carry its sid and the trace id of the
// caller's span (atom's call, through the gRPC handler's context), whether the loader
// records spans itself or not, and no trace_id for an untraced caller.
func TestSessionLogCarriesTraceID(t *testing.T) {
	traceID := trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	caller := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: trace.SpanID{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}, TraceFlags: trace.FlagsSampled, Remote: true,
	}))
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()

	for _, c := range []struct {
		name   string
		tracer trace.Tracer
		ctx    context.Context
		want   string // trace_id; "": none
	}{
		{"loader tracing off", nil, caller, traceID.String()},
		{"loader tracing on", tp.Tracer("test"), caller, traceID.String()},
		{"untraced caller", tp.Tracer("test"), context.Background(), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf logBuffer
			e := engine.NewEcho()
			if err := e.Init(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			m := NewManager(e, licence.New(1, 0, nil), Config{Tracer: c.tracer}, zerolog.New(&buf).Level(zerolog.DebugLevel))
			defer m.Close()
			s, err := m.Open(c.ctx, engine.SessionParams{Tag: "sid-log"})
			if err != nil {
				t.Fatal(err)
			}
			s.Fail(errors.New("client stream broke")) // returns after the session's last line
			l := buf.line(t, "session ended with an error")
			if l == nil {
				t.Fatalf("no session end line in %s", buf.b.String())
			}
			if l["sid"] != "sid-log" {
				t.Errorf("sid = %v, want sid-log", l["sid"])
			}
			got, ok := l[tracing.LogField]
			switch {
			case c.want == "" && ok:
				t.Errorf("%s = %v for an untraced caller", tracing.LogField, got)
			case c.want != "" && got != c.want:
				t.Errorf("%s = %v, want the caller's trace %s", tracing.LogField, got, c.want)
			}
		})
	}
}
