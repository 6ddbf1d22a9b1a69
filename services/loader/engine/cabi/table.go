package cabi

import (
	"context"
	"strconv"
	"sync"

	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/athenaserving/asf/services/loader/enginetrace"
	"go.opentelemetry.io/otel/trace"
)

// target is what an engine callback addresses through its usrTag: an async once request
// (once != nil) or an async session (emit != nil). Callbacks carry only the usrTag
// string, never a Go pointer, so every live tag is registered here.
type target struct {
	eng  *Engine
	once chan onceResult // buffered 1
	emit engine.Emit

	// mu guards the spans trace callbacks (wrapperTraceLog, from any engine thread) go
	// to: span is the engine call in progress (a once request's, or a session's create or
	// latest frame), session the session's span, used once span has ended. Both stay nil
	// while tracing is off.
	mu      sync.Mutex
	span    trace.Span
	session trace.Span
}

// recording returns the span of ctx when it records, else nil.
func recording(ctx context.Context) trace.Span {
	if sp := trace.SpanFromContext(ctx); sp.IsRecording() {
		return sp
	}
	return nil
}

// setSpan makes sp the engine call in progress (nil: keep the last one).
func (t *target) setSpan(sp trace.Span) {
	if sp == nil {
		return
	}
	t.mu.Lock()
	t.span = sp
	t.mu.Unlock()
}

// traceSpan is where a trace callback for t goes: the engine call in progress, else the
// session span while it records, else nil.
func (t *target) traceSpan() trace.Span {
	t.mu.Lock()
	sp, ss := t.span, t.session
	t.mu.Unlock()
	if sp != nil && sp.IsRecording() {
		return sp
	}
	if ss != nil && ss.IsRecording() {
		return ss
	}
	return nil
}

// traceLog puts one trace callback on t's current span.
func (t *target) traceLog(key, value string) bool {
	sp := t.traceSpan()
	if sp == nil {
		return false
	}
	enginetrace.TraceLog(sp, key, value)
	return true
}

type onceResult struct {
	outs []engine.Payload
	err  error
}

// tagTable maps the usrTag strings handed to engines to their targets. Tags are made
// unique: a tag already in use gets a "#n" suffix.
type tagTable struct {
	mu  sync.Mutex
	m   map[string]*target
	seq uint64
}

var tags = &tagTable{m: map[string]*target{}}

// add registers t under tag, or under a unique variant of it, and returns the key used.
func (tt *tagTable) add(tag string, t *target) string {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	key := tag
	for {
		if _, busy := tt.m[key]; !busy && key != "" {
			break
		}
		tt.seq++
		key = tag + "#" + strconv.FormatUint(tt.seq, 10)
	}
	tt.m[key] = t
	return key
}

func (tt *tagTable) get(key string) *target {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return tt.m[key]
}

// take removes and returns the target of key (nil when gone).
func (tt *tagTable) take(key string) *target {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	t := tt.m[key]
	delete(tt.m, key)
	return t
}

func (tt *tagTable) remove(key string) {
	tt.mu.Lock()
	delete(tt.m, key)
	tt.mu.Unlock()
}

// size is the number of live tags.
func (tt *tagTable) size() int {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return len(tt.m)
}
