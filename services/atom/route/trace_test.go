package route

import (
	"context"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/libs/tracing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// tracedRouter returns a router whose spans go to a recorder, and a context carrying a
// sampled span standing for atom's gRPC server span.
func tracedRouter(t *testing.T, p picker, d dialer) (*Router, *tracetest.SpanRecorder, context.Context, trace.Span) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
	tp := tracing.Use(sdk)
	ctx, call := tp.Tracer("test").Start(t.Context(), "asf.atom.v1.Atom/Call")
	return New(p, d, Options{Tracer: tp.Tracer("atom")}), rec, ctx, call
}

// spansNamed returns the ended spans called name, in the order they ended.
func spansNamed(rec *tracetest.SpanRecorder, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func attrOf(s sdktrace.ReadOnlySpan, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// checkAttempts asserts one span per attempt, in order: a refused first attempt on loader
// a (asf.code 10110, error status) and a retry on b that succeeded, both children of call.
func checkAttempts(t *testing.T, attempts []sdktrace.ReadOnlySpan, call trace.Span) {
	t.Helper()
	if len(attempts) != 2 {
		t.Fatalf("%d attempt spans, want 2", len(attempts))
	}
	for i, want := range []struct {
		loader string
		retry  bool
		code   int64 // 0: no asf.code
		status codes.Code
	}{
		{"a", false, 10110, codes.Error},
		{"b", true, 0, codes.Unset},
	} {
		s := attempts[i]
		n := i + 1
		if v, _ := attrOf(s, "asf.attempt"); v.AsInt64() != int64(n) {
			t.Errorf("attempt %d: asf.attempt = %v", n, v.String())
		}
		if v, ok := attrOf(s, "asf.retry"); !ok || v.AsBool() != want.retry {
			t.Errorf("attempt %d: asf.retry = %v (set %v), want %v", n, v.String(), ok, want.retry)
		}
		if v, _ := attrOf(s, "asf.loader"); v.AsString() != want.loader {
			t.Errorf("attempt %d: asf.loader = %q, want %q", n, v.AsString(), want.loader)
		}
		if v, _ := attrOf(s, "asf.sid"); v.AsString() != "sid1" {
			t.Errorf("attempt %d: asf.sid = %q", n, v.AsString())
		}
		v, ok := attrOf(s, "asf.code")
		switch {
		case want.code == 0 && ok:
			t.Errorf("attempt %d: asf.code = %v on a served attempt", n, v.String())
		case want.code != 0 && v.AsInt64() != want.code:
			t.Errorf("attempt %d: asf.code = %v, want %d", n, v.String(), want.code)
		}
		if s.Status().Code != want.status {
			t.Errorf("attempt %d: status %v, want %v", n, s.Status().Code, want.status)
		}
		if s.Parent().SpanID() != call.SpanContext().SpanID() || s.SpanContext().TraceID() != call.SpanContext().TraceID() {
			t.Errorf("attempt %d is not a child of the call's span", n)
		}
	}
}

func TestOnceRetryGivesASpanPerAttempt(t *testing.T) {
	p := &fakePicker{addrs: []string{"a", "b"}}
	var seen []trace.SpanContext // the span context each loader call ran in
	record := func(f func(context.Context, *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error)) func(context.Context, *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
		return func(ctx context.Context, in *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
			seen = append(seen, trace.SpanContextFromContext(ctx))
			return f(ctx, in)
		}
	}
	d := fakeDialer{"a": {once: record(onceErr(aserr.ErrLicenceFull))}, "b": {once: record(onceOK("b"))}}
	r, rec, ctx, call := tracedRouter(t, p, d)
	out, err := r.Once(ctx, frame(3, "hi"))
	if err != nil || out.ServiceId != "b" {
		t.Fatalf("out=%v err=%v", out, err)
	}
	call.End()
	attempts := spansNamed(rec, spanLoaderOnce)
	checkAttempts(t, attempts, call)
	// Each loader call runs in its own attempt's span (atom's gRPC client span hangs there).
	for i, sc := range seen {
		if i < len(attempts) && sc.SpanID() != attempts[i].SpanContext().SpanID() {
			t.Errorf("loader call %d ran in span %s, want its attempt's %s", i+1, sc.SpanID(), attempts[i].SpanContext().SpanID())
		}
	}
	if picks := spansNamed(rec, spanPick); len(picks) != 1 || picks[0].Parent().SpanID() != call.SpanContext().SpanID() {
		t.Errorf("%d pick spans, want one under the call's span", len(picks))
	}
}

func TestSessionRetryGivesASpanPerAttempt(t *testing.T) {
	d := fakeDialer{"a": {script: refuseAfter(1, aserr.ErrLicenceFull)}, "b": {script: echo}}
	defer d.wait()
	r, rec, ctx, call := tracedRouter(t, &fakePicker{addrs: []string{"a", "b"}}, d)
	c := newClient(ctx)
	done := runStream(r, ctx, c)
	sendFrame(t, c, frame(0, "f0"))
	if o := recvOut(t, c); string(o.Pl[0].Data) != "f0" {
		t.Fatalf("output = %q", o.Pl[0].Data)
	}
	sendFrame(t, c, frame(2, "f1"))
	if o := recvOut(t, c); o.Status != loaderpb.Status_STATUS_END {
		t.Fatalf("last output = %v", o)
	}
	if err := waitErr(t, done, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	call.End()
	// The served attempt's span ends when its pump returns, which may follow Stream's return.
	testpoll.Until(t, 3*time.Second, "two ended session attempt spans", func() bool {
		return len(spansNamed(rec, spanLoaderSession)) == 2
	})
	attempts := spansNamed(rec, spanLoaderSession)
	if v, _ := attrOf(attempts[0], "asf.attempt"); v.AsInt64() != 1 {
		attempts[0], attempts[1] = attempts[1], attempts[0] // ended out of order
	}
	checkAttempts(t, attempts, call)
}
