package loader_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/services/loader"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// startTraced starts a loader tracing into a span recorder.
func startTraced(t *testing.T, cfg loader.Config) (loaderpb.LoaderClient, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	s, err := loader.New(cfg, zerolog.Nop(), prometheus.NewRegistry(), loader.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cc, err := grpcx.Dial(s.GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return loaderpb.NewLoaderClient(cc), rec
}

// ended returns the ended spans called name whose asf.sid is sid, waiting until there
// are n of them.
func ended(t *testing.T, rec *tracetest.SpanRecorder, name, sid string, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	var got []sdktrace.ReadOnlySpan
	testpoll.Until(t, 5*time.Second, fmt.Sprintf("%d ended %s spans of sid %s", n, name, sid), func() bool {
		got = got[:0]
		for _, s := range rec.Ended() {
			if s.Name() == name && attr(s, "asf.sid").AsString() == sid {
				got = append(got, s)
			}
		}
		return len(got) >= n
	})
	return got
}

func attr(s sdktrace.ReadOnlySpan, key string) attribute.Value {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// events returns the values ("value" attribute) of the events called name on s.
func events(s sdktrace.ReadOnlySpan, name string) []string {
	var out []string
	for _, e := range s.Events() {
		if e.Name != name {
			continue
		}
		v := ""
		for _, kv := range e.Attributes {
			if kv.Key == "value" {
				v = kv.Value.String()
			}
		}
		out = append(out, v)
	}
	return out
}

func TestCEngineOnceSpans(t *testing.T) {
	for _, iso := range []string{loader.IsolationNone, loader.IsolationProcess} {
		t.Run(iso, func(t *testing.T) { testCEngineOnceSpans(t, iso) })
	}
}

// testCEngineOnceSpans checks the spans of once requests; with isolation process the
// engine's trace callbacks cross the worker protocol.
func testCEngineOnceSpans(t *testing.T, isolation string) {
	cfg := cConfig(t, 2, false)
	cfg.Service, cfg.Isolation = "c-trace", isolation
	c, rec := startTraced(t, cfg)

	in := onceIn("hello", nil)
	in.Headers["sid"] = "once-ok"
	if _, err := c.Once(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	call := ended(t, rec, "engine.once", "once-ok", 1)[0]
	if got := attr(call, "asf.capability").AsString(); got != "c-trace" {
		t.Errorf("asf.capability = %q", got)
	}
	if got := attr(call, "asf.engine").AsString(); got != "c" {
		t.Errorf("asf.engine = %q", got)
	}
	if ev := events(call, "mode"); len(ev) != 1 || ev[0] != "once-sync" {
		t.Errorf("trace events %v, want mode=once-sync from wrapperTraceLog", call.Events())
	}
	if got := attr(call, "engine.mode").AsString(); got != "once-sync" {
		t.Errorf("attribute engine.mode = %q", got)
	}
	if call.Status().Code == codes.Error {
		t.Errorf("status %v", call.Status())
	}
	lic := ended(t, rec, "loader.licence", "once-ok", 1)[0]
	if lic.Parent().SpanID() != call.Parent().SpanID() || lic.EndTime().After(call.StartTime()) {
		t.Errorf("licence span %v should precede the engine call as its sibling", lic.SpanContext())
	}

	in = onceIn("x", map[string]string{"fail": "1"})
	in.Headers["sid"] = "once-fail"
	if _, err := c.Once(t.Context(), in); aserr.CodeOf(grpcx.FromStatus(err)) != 20001 {
		t.Fatalf("once fail=1: %v", err)
	}
	call = ended(t, rec, "engine.once", "once-fail", 1)[0]
	if call.Status().Code != codes.Error || attr(call, "asf.code").AsInt64() != 20001 {
		t.Errorf("failed call: status %v, asf.code %v; want an error with the engine's code 20001", call.Status(), attr(call, "asf.code").String())
	}
	if ev := events(call, "fail"); len(ev) != 1 {
		t.Errorf("events %v, want the engine's fail trace", call.Events())
	}
}

func TestCEngineSessionSpans(t *testing.T) {
	for _, mode := range []struct {
		async     bool
		isolation string
	}{{false, loader.IsolationNone}, {true, loader.IsolationNone}, {false, loader.IsolationProcess}, {true, loader.IsolationProcess}} {
		async := mode.async
		t.Run(fmt.Sprintf("async=%v/%s", async, mode.isolation), func(t *testing.T) {
			cfg := cConfig(t, 2, async)
			cfg.Isolation = mode.isolation
			c, rec := startTraced(t, cfg)
			sid := fmt.Sprint("sess-", async)
			if _, err := session(t.Context(), c, sid); err != nil {
				t.Fatal(err)
			}
			sess := ended(t, rec, "loader.session", sid, 1)[0]
			create := ended(t, rec, "engine.create", sid, 1)[0]
			if create.Parent().SpanID() != sess.SpanContext().SpanID() {
				t.Errorf("engine.create is not a child of loader.session")
			}
			want := "sync"
			if async {
				want = "async"
			}
			if ev := events(create, "session"); len(ev) != 1 || ev[0] != want {
				t.Errorf("create events %v, want session=%s", create.Events(), want)
			}
			frames := ended(t, rec, "engine.write", sid, 3)
			deliveries := len(events(sess, "deliver"))
			for i, f := range frames {
				if f.Parent().SpanID() != sess.SpanContext().SpanID() {
					t.Errorf("frame %d is not a child of loader.session", i)
				}
				if got := attr(f, "asf.sync_id").AsInt64(); got != int64(i) {
					t.Errorf("frame %d: asf.sync_id %d", i, got)
				}
				if ev := events(f, "write"); len(ev) != 1 || ev[0] != fmt.Sprint(i+1) {
					t.Errorf("frame %d events %v, want write=%d", i, f.Events(), i+1)
				}
				deliveries += len(events(f, "deliver"))
			}
			// An isolated engine's calls from its own threads after a frame's call returned
			// do not reach the loader (docs/engines.md).
			if async && mode.isolation == loader.IsolationNone && deliveries != 3 {
				t.Errorf("%d deliver events on the frames and the session, want 3 (one per batch)", deliveries)
			}
			results := 0
			for _, e := range sess.Events() {
				if e.Name == "engine.result" {
					results++
				}
			}
			if results != 3 || sess.Status().Code == codes.Error {
				t.Errorf("session span: %d results, status %v", results, sess.Status())
			}
		})
	}
}

func pythonConfig(t *testing.T) loader.Config {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("/usr/bin/python3 is not installed: Python engine tests skipped")
	}
	cfg := testConfig(2)
	cfg.Service, cfg.Engine, cfg.EnginePath, cfg.Workers = "py-trace", loader.EnginePython, "engine/python/testdata/traced", 1
	return cfg
}

// child returns the ended span called name whose parent is parent.
func child(t *testing.T, rec *tracetest.SpanRecorder, parent sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	for _, s := range rec.Ended() {
		if s.Name() == name && s.Parent().SpanID() == parent.SpanContext().SpanID() {
			return s
		}
	}
	t.Fatalf("no span %s under %s %s", name, parent.Name(), parent.SpanContext().SpanID())
	return nil
}

func eventAttrs(s sdktrace.ReadOnlySpan, name string) map[string]string {
	for _, e := range s.Events() {
		if e.Name == name {
			m := map[string]string{}
			for _, kv := range e.Attributes {
				m[string(kv.Key)] = kv.Value.String()
			}
			return m
		}
	}
	return nil
}

func TestPythonEngineOnceSpans(t *testing.T) {
	c, rec := startTraced(t, pythonConfig(t))
	in := onceIn("hello", nil)
	in.Headers["sid"] = "py-once"
	if _, err := c.Once(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	call := ended(t, rec, "engine.once", "py-once", 1)[0]
	if got := attr(call, "asf.capability").AsString(); got != "py-trace" {
		t.Errorf("asf.capability = %q", got)
	}
	if got := attr(call, "model").AsString(); got != "echo-1" {
		t.Errorf("attribute model = %q, want echo-1 (trace.set_attributes)", got)
	}
	if ev := eventAttrs(call, "cache"); ev["hit"] != "false" {
		t.Errorf("event cache %v on the engine-call span", ev)
	}
	prep := child(t, rec, call, "prepare")
	if got := attr(prep, "n").AsInt64(); got != 5 {
		t.Errorf("prepare: n = %d", got)
	}
	if ev := eventAttrs(prep, "prepared"); ev["ratio"] != "0.5" {
		t.Errorf("prepare events %v", prep.Events())
	}
	tok := child(t, rec, prep, "tokenize")
	if !attr(tok, "fast").AsBool() || tok.StartTime().Before(prep.StartTime()) || tok.EndTime().After(prep.EndTime()) {
		t.Errorf("tokenize %v..%v outside prepare %v..%v", tok.StartTime(), tok.EndTime(), prep.StartTime(), prep.EndTime())
	}
	if prep.StartTime().Before(call.StartTime()) || prep.EndTime().After(call.EndTime()) {
		t.Errorf("prepare %v..%v outside the engine call %v..%v", prep.StartTime(), prep.EndTime(), call.StartTime(), call.EndTime())
	}

	in = onceIn("x", map[string]string{"fail": "1"})
	in.Headers["sid"] = "py-fail"
	if _, err := c.Once(t.Context(), in); aserr.CodeOf(grpcx.FromStatus(err)) != 30003 {
		t.Fatalf("once fail=1: %v, want 30003", err)
	}
	call = ended(t, rec, "engine.once", "py-fail", 1)[0]
	if call.Status().Code != codes.Error || attr(call, "asf.code").AsInt64() != 30003 {
		t.Errorf("failed call: status %v, asf.code %s", call.Status(), attr(call, "asf.code").String())
	}
	infer := child(t, rec, call, "infer")
	if infer.Status().Code != codes.Error || !strings.Contains(infer.Status().Description, "infer failed") {
		t.Errorf("infer span status %v, want the exception", infer.Status())
	}
}

func TestPythonEngineSessionSpans(t *testing.T) {
	c, rec := startTraced(t, pythonConfig(t))
	if _, err := session(t.Context(), c, "py-sess"); err != nil {
		t.Fatal(err)
	}
	sess := ended(t, rec, "loader.session", "py-sess", 1)[0]
	create := ended(t, rec, "engine.create", "py-sess", 1)[0]
	if ev := eventAttrs(create, "created"); ev["sid"] != "py-sess" {
		t.Errorf("create events %v", create.Events())
	}
	frames := ended(t, rec, "engine.write", "py-sess", 3)
	for i, f := range frames {
		if f.Parent().SpanID() != sess.SpanContext().SpanID() {
			t.Errorf("frame %d is not a child of loader.session", i)
		}
		fs := child(t, rec, f, "frame")
		if got := attr(fs, "status").AsInt64(); got != int64(i) { // BEGIN, CONTINUE, END
			t.Errorf("frame %d: wrapper span status %d", i, got)
		}
		if ev := eventAttrs(fs, "seen"); ev["bytes"] != "1" {
			t.Errorf("frame %d: events %v", i, fs.Events())
		}
	}
}
