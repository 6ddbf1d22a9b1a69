package worker

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/loader/enginetrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Tracing over the worker protocol. A call whose ctx holds a recording span (the loader's
// engine-call span) is sent with flagTraced set in its type byte; while it runs, the
// child may send MsgTrace frames with the call's id, before its answer, and the parent
// turns them into child spans, events and attributes of that span. Untraced calls carry
// no flag, and a child sends nothing for them.
//
// MsgTrace body: uint8 op, uint32 span (0: the engine-call span itself; others are
// numbered by the child), then
//
//	TraceStart: uint32 parent span, string name, uint64 unix ns, attributes
//	TraceEnd:   uint64 unix ns, int32 code (0: ok), string message
//	TraceEvent: string name, uint64 unix ns, attributes
//	TraceAttrs: attributes
//
// attributes: uint32 count, each string key, uint8 kind (0 string, 1 int64, 2 float64,
// 3 bool) and the value (string; uint64; IEEE 754 bits as uint64; uint8).
const (
	flagTraced MsgType = 0x80

	TraceStart uint8 = 1
	TraceEnd   uint8 = 2
	TraceEvent uint8 = 3
	TraceAttrs uint8 = 4
)

// maxTraceSpans bounds the child spans one call may open.
const maxTraceSpans = 256

// traceScope is the instrumentation scope of the spans a worker reports.
const traceScope = enginetrace.ScopeName + "/worker"

// callTrace turns one traced call's MsgTrace frames into spans under the call's span.
type callTrace struct {
	mu    sync.Mutex
	call  trace.Span
	ctx   context.Context // holds call
	spans map[uint32]trace.Span
}

func newCallTrace(call trace.Span) *callTrace {
	return &callTrace{call: call, ctx: trace.ContextWithSpan(context.Background(), call)}
}

func (ct *callTrace) span(id uint32) trace.Span {
	if id == 0 {
		return ct.call
	}
	return ct.spans[id]
}

// apply applies one MsgTrace body. Unknown span ids are ignored (the child may report
// on a span the parent already ended); a malformed body is an error.
func (ct *callTrace) apply(body []byte) error {
	d := newDecoder(body)
	op, id := d.u8(), d.u32()
	ct.mu.Lock()
	defer ct.mu.Unlock()
	switch op {
	case TraceStart:
		parent, name, ts, attrs := d.u32(), d.str(), d.u64(), d.attrs()
		if err := d.Done(); err != nil {
			return err
		}
		if id == 0 || len(ct.spans) >= maxTraceSpans || ct.spans[id] != nil {
			return nil
		}
		p := ct.span(parent)
		if p == nil {
			p = ct.call
		}
		_, sp := ct.call.TracerProvider().Tracer(traceScope).Start(trace.ContextWithSpan(ct.ctx, p), name,
			trace.WithTimestamp(unixTime(ts)), trace.WithAttributes(attrs...))
		if ct.spans == nil {
			ct.spans = map[uint32]trace.Span{}
		}
		ct.spans[id] = sp
	case TraceEnd:
		ts, code, msg := d.u64(), int32(d.u32()), d.str()
		if err := d.Done(); err != nil {
			return err
		}
		sp := ct.spans[id]
		if id == 0 || sp == nil {
			return nil
		}
		delete(ct.spans, id)
		if code != 0 {
			enginetrace.Fail(sp, aserr.Received(int(code), msg))
		}
		sp.End(trace.WithTimestamp(unixTime(ts)))
	case TraceEvent:
		name, ts, attrs := d.str(), d.u64(), d.attrs()
		if err := d.Done(); err != nil {
			return err
		}
		if sp := ct.span(id); sp != nil {
			sp.AddEvent(name, trace.WithTimestamp(unixTime(ts)), trace.WithAttributes(attrs...))
		}
	case TraceAttrs:
		attrs := d.attrs()
		if err := d.Done(); err != nil {
			return err
		}
		if sp := ct.span(id); sp != nil {
			sp.SetAttributes(attrs...)
		}
	default:
		if err := d.Err(); err != nil {
			return err
		}
		return fmt.Errorf("trace op %d: %w", op, errMalformed)
	}
	return nil
}

// finish ends the spans the child left open when its call ended.
func (ct *callTrace) finish() {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	for id, sp := range ct.spans {
		sp.End()
		delete(ct.spans, id)
	}
}

func unixTime(ns uint64) time.Time {
	if ns == 0 || ns > math.MaxInt64 {
		return time.Now()
	}
	return time.Unix(0, int64(ns))
}

// Attribute kinds of the trace encoding.
const (
	attrString uint8 = 0
	attrInt    uint8 = 1
	attrFloat  uint8 = 2
	attrBool   uint8 = 3
)

func (d *Decoder) attrs() []attribute.KeyValue {
	n := d.count(6)
	if n == 0 {
		return nil
	}
	out := make([]attribute.KeyValue, 0, n)
	for range n {
		k := d.str()
		switch d.u8() {
		case attrString:
			out = append(out, attribute.String(k, d.str()))
		case attrInt:
			out = append(out, attribute.Int64(k, int64(d.u64())))
		case attrFloat:
			out = append(out, attribute.Float64(k, math.Float64frombits(d.u64())))
		case attrBool:
			out = append(out, attribute.Bool(k, d.u8() != 0))
		default:
			d.fail("attribute kind")
		}
	}
	if d.err != nil {
		return nil
	}
	return out
}

func (e *Encoder) attrs(kvs []attribute.KeyValue) {
	e.u32(uint32(len(kvs)))
	for _, kv := range kvs {
		e.str(string(kv.Key))
		switch kv.Value.Type() {
		case attribute.INT64:
			e.u8(attrInt)
			e.u64(uint64(kv.Value.AsInt64()))
		case attribute.FLOAT64:
			e.u8(attrFloat)
			e.u64(math.Float64bits(kv.Value.AsFloat64()))
		case attribute.BOOL:
			e.u8(attrBool)
			if kv.Value.AsBool() {
				e.u8(1)
			} else {
				e.u8(0)
			}
		default:
			e.u8(attrString)
			e.str(kv.Value.String())
		}
	}
}

// TraceEventBody encodes a TraceEvent on span id.
func (e *Encoder) TraceEventBody(id uint32, name string, ts time.Time, attrs []attribute.KeyValue) {
	e.u8(TraceEvent)
	e.u32(id)
	e.str(name)
	e.u64(uint64(ts.UnixNano()))
	e.attrs(attrs)
}

// TraceAttrsBody encodes a TraceAttrs on span id.
func (e *Encoder) TraceAttrsBody(id uint32, attrs []attribute.KeyValue) {
	e.u8(TraceAttrs)
	e.u32(id)
	e.attrs(attrs)
}

// TraceStartBody encodes a TraceStart of span id under parent.
func (e *Encoder) TraceStartBody(id, parent uint32, name string, ts time.Time, attrs []attribute.KeyValue) {
	e.u8(TraceStart)
	e.u32(id)
	e.u32(parent)
	e.str(name)
	e.u64(uint64(ts.UnixNano()))
	e.attrs(attrs)
}

// TraceEndBody encodes a TraceEnd of span id, failed when err is not nil.
func (e *Encoder) TraceEndBody(id uint32, ts time.Time, err error) {
	e.u8(TraceEnd)
	e.u32(id)
	e.u64(uint64(ts.UnixNano()))
	code, msg := errorParts(err)
	e.u32(uint32(int32(code)))
	e.str(msg)
}
