// Package session runs a loader's engine work within its licence: once requests and
// engine sessions take a slot each, sessions get their frames back in sync_id order,
// expire after an idle TTL, and release their slot whichever way they end.
//
//	m := session.NewManager(eng, licence.New(10, 0, nil), session.Config{}, log)
//	defer m.Close()
//	s, err := m.Open(ctx, engine.SessionParams{Tag: sid})    // 10110 when the licence is full
//	defer s.Abort()
//	_ = s.Write(ctx, engine.Frame{SyncID: 0, Status: engine.StatusEnd, Inputs: in})
//	for { r, err := s.Recv(ctx); if err == io.EOF { break } ... }
package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/tracing"
	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/athenaserving/asf/services/loader/enginetrace"
	"github.com/athenaserving/asf/services/loader/licence"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Config tunes session handling. Zero values take the defaults.
type Config struct {
	// IdleTTL destroys a session with no input or output for this long (default 15 s).
	IdleTTL time.Duration
	// ReorderWait is how long a session waits for a missing sync_id before skipping it
	// (default 500 ms).
	ReorderWait time.Duration
	// ReorderMax is how many frames may wait behind a gap before it is skipped at once
	// (default 64).
	ReorderMax int
	// Tracer starts the spans of the licence wait and of every engine call (once, session
	// open, each session frame), children of the span in the caller's ctx. Nil or a no-op
	// tracer's provider (enginetrace.Tracer): no spans, nothing spent on them.
	Tracer trace.Tracer
	// Capability is the service name set as asf.capability on the spans.
	Capability string
}

func (c Config) withDefaults() Config {
	if c.IdleTTL <= 0 {
		c.IdleTTL = 15 * time.Second
	}
	if c.ReorderWait <= 0 {
		c.ReorderWait = 500 * time.Millisecond
	}
	if c.ReorderMax <= 0 {
		c.ReorderMax = 64
	}
	return c
}

// Manager admits once requests and sessions within the licence pool and owns the
// goroutine of every open session.
type Manager struct {
	eng   engine.Engine
	pool  *licence.Pool
	cfg   Config
	log   zerolog.Logger
	spans *spans // nil: tracing off

	wg       sync.WaitGroup
	mu       sync.Mutex
	sessions map[*Session]struct{}
	byTag    map[string]*Session
	closed   bool
}

// NewManager returns a manager running eng (already initialised) within pool.
func NewManager(eng engine.Engine, pool *licence.Pool, cfg Config, log zerolog.Logger) *Manager {
	return &Manager{
		eng: eng, pool: pool, cfg: cfg.withDefaults(), log: log, spans: newSpans(cfg.Tracer, cfg.Capability, eng.Name()),
		sessions: map[*Session]struct{}{}, byTag: map[string]*Session{},
	}
}

// SetTimeouts changes IdleTTL and ReorderWait (zero: the default) for the sessions
// opened from now on; open sessions keep theirs.
func (m *Manager) SetTimeouts(idleTTL, reorderWait time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.cfg
	c.IdleTTL, c.ReorderWait = idleTTL, reorderWait
	m.cfg = c.withDefaults()
}

func (m *Manager) config() Config {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg
}

// Pool returns the licence pool.
func (m *Manager) Pool() *licence.Pool { return m.pool }

// OnceResult is a once response and the time spent in the engine.
type OnceResult struct {
	engine.Response
	Engine time.Duration
}

// Once runs a once request in a licence slot; it fails at once with 10110 when none is
// free, and with 10106 when an output is not among the expected ones.
func (m *Manager) Once(ctx context.Context, req engine.Request) (OnceResult, error) {
	if m.spans != nil {
		return m.onceTraced(ctx, req)
	}
	slot, err := m.pool.Acquire()
	if err != nil {
		return OnceResult{}, fmt.Errorf("once %s: %w", req.Tag, err)
	}
	defer slot.Release()
	start := time.Now()
	resp, err := m.eng.Once(ctx, req)
	took := time.Since(start)
	if err != nil {
		return OnceResult{Engine: took}, fmt.Errorf("once %s: %w", req.Tag, err)
	}
	if err := engine.CheckOutputs(req.Expect, resp.Outputs); err != nil {
		return OnceResult{Engine: took}, fmt.Errorf("once %s: %w", req.Tag, err)
	}
	return OnceResult{Response: resp, Engine: took}, nil
}

// onceTraced is Once with a licence span and an engine-call span around the engine call.
func (m *Manager) onceTraced(ctx context.Context, req engine.Request) (OnceResult, error) {
	slot, err := m.spans.licence(ctx, req.Tag, m.pool)
	if err != nil {
		return OnceResult{}, fmt.Errorf("once %s: %w", req.Tag, err)
	}
	defer slot.Release()
	ctx, span := m.spans.start(ctx, enginetrace.SpanOnce, req.Tag)
	start := time.Now()
	resp, err := m.eng.Once(ctx, req)
	took := time.Since(start)
	if err == nil {
		err = engine.CheckOutputs(req.Expect, resp.Outputs)
	}
	enginetrace.End(span, err)
	if err != nil {
		return OnceResult{Engine: took}, fmt.Errorf("once %s: %w", req.Tag, err)
	}
	return OnceResult{Response: resp, Engine: took}, nil
}

// Open opens an engine session in a licence slot: 10110 at once when none is free, 10105
// when a session with the same non-empty tag is open.
func (m *Manager) Open(ctx context.Context, p engine.SessionParams) (_ *Session, err error) {
	// The caller's trace id (atom's call, webgate's request) joins the session's lines to
	// the request's lines in the other services; taken before the session's own span, which
	// without a caller's trace would be a root of a trace nobody records.
	log := tracing.WithLog(ctx, m.log.With().Str("sid", p.Tag).Logger())
	var span trace.Span // the session's span (tracing on)
	var slot *licence.Slot
	if m.spans != nil {
		ctx, span = m.spans.start(ctx, enginetrace.SpanSession, p.Tag)
		defer func() {
			if err != nil && span != nil {
				enginetrace.End(span, err)
			}
		}()
		slot, err = m.spans.licence(ctx, p.Tag, m.pool)
	} else {
		slot, err = m.pool.Acquire()
	}
	if err != nil {
		return nil, fmt.Errorf("open session %s: %w", p.Tag, err)
	}
	s := &Session{
		m: m, slot: slot, tag: p.Tag, expect: p.Expect,
		in: make(chan engine.Frame, 16), out: make(chan engine.Result, 8),
		ended: make(chan struct{}, 1), activity: make(chan struct{}, 1), done: make(chan struct{}),
		ro:   newReorder(m.config().ReorderMax),
		span: span,
		log:  log,
	}
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	switch {
	case span != nil && !span.IsRecording():
		// Not sampled: its frames would not be either; the session runs untraced.
		span.End()
		s.span, span = nil, nil
	case span != nil:
		s.spanCtx = trace.ContextWithSpan(context.Background(), span)
	}
	m.mu.Lock()
	switch {
	case m.closed:
		err = fmt.Errorf("open session %s: %w", p.Tag, aserr.ErrReleased)
	case p.Tag != "" && m.byTag[p.Tag] != nil:
		err = fmt.Errorf("open session %s: %w", p.Tag, aserr.ErrRepeatedSession)
	default:
		m.sessions[s] = struct{}{}
		if p.Tag != "" {
			m.byTag[p.Tag] = s
		}
	}
	m.mu.Unlock()
	if err != nil {
		slot.Release()
		s.cancel(err)
		return nil, err
	}
	var es engine.Session
	if span != nil {
		cctx, cspan := m.spans.start(ctx, enginetrace.SpanCreate, p.Tag)
		es, err = m.eng.NewSession(enginetrace.WithSession(cctx, span), p, s.emit)
		enginetrace.End(cspan, err)
	} else {
		es, err = m.eng.NewSession(ctx, p, s.emit)
	}
	if err != nil {
		m.remove(s)
		slot.Release()
		s.cancel(err)
		return nil, fmt.Errorf("open session %s: %w", p.Tag, err)
	}
	s.eng = es
	m.wg.Add(1)
	go s.run()
	return s, nil
}

func (m *Manager) remove(s *Session) {
	m.mu.Lock()
	delete(m.sessions, s)
	if s.tag != "" && m.byTag[s.tag] == s {
		delete(m.byTag, s.tag)
	}
	m.mu.Unlock()
}

// Active is the number of open sessions.
func (m *Manager) Active() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

// Refuse makes every later Once and Open fail with the licence-full code (draining).
func (m *Manager) Refuse() { m.pool.Close() }

// Wait blocks until no session or once request runs, or ctx ends.
func (m *Manager) Wait(ctx context.Context) error { return m.pool.Wait(ctx) }

// AbortAll ends every open session with err.
func (m *Manager) AbortAll(err error) {
	m.mu.Lock()
	ss := make([]*Session, 0, len(m.sessions))
	for s := range m.sessions {
		ss = append(ss, s)
	}
	m.mu.Unlock()
	for _, s := range ss {
		s.Fail(err)
	}
}

// Close refuses new work, aborts every open session with 10101 and waits for their
// goroutines to finish. The engine is not finalised: its owner calls Fini afterwards.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.pool.Close()
	m.AbortAll(fmt.Errorf("loader stopping: %w", aserr.ErrReleased))
	m.wg.Wait()
}

// Session is one open engine session. Write may be called from one goroutine and Recv
// from another; Abort and Fail from anywhere.
type Session struct {
	m      *Manager
	slot   *licence.Slot
	tag    string
	expect []engine.Meta
	eng    engine.Session
	ro     *reorder       // owned by run
	log    zerolog.Logger // the manager's, with the sid and the caller's trace id

	span    trace.Span      // the session's span; nil when tracing is off
	spanCtx context.Context // holds span: the parent of the frame spans

	ctx    context.Context // cancelled (with a cause) by Abort/Fail
	cancel context.CancelCauseFunc

	in       chan engine.Frame
	out      chan engine.Result
	ended    chan struct{} // the terminal result was delivered
	activity chan struct{} // an output was delivered: refresh the TTL
	done     chan struct{} // closed after the engine session was destroyed and the slot released
	err      error         // why the session ended; written before done is closed

	writeStart atomic.Int64 // unix ns when the frame being written was handed to the engine

	gotEnd bool // Recv side only
}

// Tag returns the session's tag (its sid).
func (s *Session) Tag() string { return s.tag }

// Write queues a frame; frames may come in any sync_id order. It blocks while the
// session's queue is full, and fails once the session ended.
func (s *Session) Write(ctx context.Context, f engine.Frame) error {
	select {
	case <-s.done:
		return s.endErr()
	case <-s.ctx.Done():
		return s.endErr()
	default:
	}
	select {
	case s.in <- f:
		return nil
	case <-s.done:
		return s.endErr()
	case <-s.ctx.Done():
		return s.endErr()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Session) endErr() error {
	select {
	case <-s.done:
		if s.err != nil {
			return s.err
		}
	default:
		if c := context.Cause(s.ctx); c != nil {
			return c
		}
	}
	return fmt.Errorf("session %s ended: %w", s.tag, aserr.ErrReleased)
}

// Recv returns the next result. After the END result it waits until the session's slot
// is free and returns io.EOF; an engine error, the idle TTL (10114) or an abort end it
// with that error. Recv must be called from one goroutine at a time.
func (s *Session) Recv(ctx context.Context) (engine.Result, error) {
	if s.gotEnd {
		select {
		case <-s.done:
			return engine.Result{}, io.EOF
		case <-ctx.Done():
			return engine.Result{}, ctx.Err()
		}
	}
	select {
	case r := <-s.out:
		return s.take(r)
	case <-s.done:
		select {
		case r := <-s.out:
			return s.take(r)
		default:
		}
		return engine.Result{}, s.endErr()
	case <-ctx.Done():
		return engine.Result{}, ctx.Err()
	}
}

func (s *Session) take(r engine.Result) (engine.Result, error) {
	if r.Err != nil {
		return engine.Result{}, r.Err
	}
	if r.Status == engine.StatusEnd {
		s.gotEnd = true
	}
	return r, nil
}

// Abort ends the session at once (client gone): the engine session is destroyed and the
// slot released before Abort returns. It is a no-op on an ended session.
func (s *Session) Abort() { s.stop(context.Canceled) }

// Fail ends the session with err; Recv returns err. It returns once the slot is free.
func (s *Session) Fail(err error) { s.stop(err) }

func (s *Session) stop(cause error) {
	s.cancel(cause)
	<-s.done
}

// Done is closed once the session ended and its slot was released.
func (s *Session) Done() <-chan struct{} { return s.done }

// emit is the engine's result callback.
func (s *Session) emit(r engine.Result) {
	if r.Engine == 0 {
		if ws := s.writeStart.Load(); ws != 0 {
			r.Engine = time.Since(time.Unix(0, ws))
		}
	}
	if r.Err == nil {
		if err := engine.CheckOutputs(s.expect, r.Outputs); err != nil {
			r = engine.Result{Err: err}
		}
	}
	if s.span != nil {
		s.m.spans.result(s.span, r)
	}
	select {
	case s.out <- r:
	case <-s.ctx.Done():
		return
	case <-s.done:
		return
	}
	sig := s.activity
	if r.Err != nil || r.Status == engine.StatusEnd {
		sig = s.ended
	}
	select {
	case sig <- struct{}{}:
	default:
	}
}

func (s *Session) run() {
	defer s.m.wg.Done()
	cfg := s.m.config()
	ttl := time.NewTimer(cfg.IdleTTL)
	defer ttl.Stop()
	gap := time.NewTimer(cfg.ReorderWait)
	gap.Stop()
	defer gap.Stop()
	gapArmed := false

	write := func(fs []engine.Frame) error {
		for _, f := range fs {
			s.writeStart.Store(time.Now().UnixNano())
			var err error
			if s.span != nil {
				err = s.writeTraced(f)
			} else {
				err = s.eng.Write(s.ctx, f)
			}
			if err != nil {
				return fmt.Errorf("session %s: engine write sync_id %d: %w", s.tag, f.SyncID, err)
			}
		}
		return nil
	}
	afterWrite := func() {
		switch {
		case s.ro.pending() == 0 && gapArmed:
			gap.Stop()
			gapArmed = false
		case s.ro.pending() > 0 && !gapArmed:
			gap.Reset(cfg.ReorderWait)
			gapArmed = true
		}
	}

	var err error
loop:
	for {
		select {
		case f := <-s.in:
			ttl.Reset(cfg.IdleTTL)
			ready, dropped, perr := s.ro.push(f)
			if perr != nil {
				err = fmt.Errorf("session %s: %w", s.tag, perr)
				break loop
			}
			if dropped {
				s.log.Debug().Int32("sync_id", f.SyncID).Msg("late frame after its gap was skipped: dropped")
			}
			if err = write(ready); err != nil {
				break loop
			}
			afterWrite()
		case <-gap.C:
			gapArmed = false
			s.log.Debug().Int("held", s.ro.pending()).Msg("sync_id gap: skipped")
			if err = write(s.ro.skip(nil)); err != nil {
				break loop
			}
			afterWrite()
		case <-s.activity:
			ttl.Reset(cfg.IdleTTL)
		case <-s.ended:
			break loop
		case <-ttl.C:
			err = fmt.Errorf("session %s idle for %s: %w", s.tag, cfg.IdleTTL, aserr.ErrSessionTimeout)
			break loop
		case <-s.ctx.Done():
			err = context.Cause(s.ctx)
			break loop
		}
	}
	s.cancel(err) // unblocks emit callers; no-op when already cancelled
	if cerr := s.eng.Close(); cerr != nil {
		s.log.Warn().Err(cerr).Msg("engine session destroy failed")
	}
	s.slot.Release()
	s.m.remove(s)
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.Debug().Err(err).Msg("session ended with an error")
	}
	s.err = err
	if s.span != nil {
		enginetrace.End(s.span, err)
	}
	close(s.done)
}

// writeTraced writes f to the engine inside a frame span, a child of the session span;
// the engine sees the frame span in the ctx of its Write.
func (s *Session) writeTraced(f engine.Frame) error {
	_, span := s.m.spans.start(s.spanCtx, enginetrace.SpanWrite, s.tag)
	if span.IsRecording() {
		span.SetAttributes(enginetrace.KeySyncID.Int(int(f.SyncID)), enginetrace.KeyStatus.String(f.Status.String()))
	}
	err := s.eng.Write(trace.ContextWithSpan(s.ctx, span), f)
	enginetrace.End(span, err)
	return err
}

// spans starts the manager's spans; a Manager without a tracer has none.
type spans struct {
	tracer trace.Tracer
	common []attribute.KeyValue // capability and engine
}

func newSpans(t trace.Tracer, capability, engineName string) *spans {
	if t == nil {
		return nil
	}
	return &spans{tracer: t, common: []attribute.KeyValue{
		enginetrace.KeyCapability.String(capability), enginetrace.KeyEngine.String(engineName),
	}}
}

// start starts span name with the sid, capability and engine attributes plus extra.
// The attributes are set after the sampling decision, so a span that is not sampled
// costs no attribute slice.
func (sp *spans) start(ctx context.Context, name, sid string, extra ...attribute.KeyValue) (context.Context, trace.Span) {
	ctx, span := sp.tracer.Start(ctx, name)
	if span.IsRecording() {
		span.SetAttributes(enginetrace.SID(sid))
		span.SetAttributes(sp.common...)
		span.SetAttributes(extra...)
	}
	return ctx, span
}

// licence takes a slot from pool inside a licence span (10110 on the span when full).
func (sp *spans) licence(ctx context.Context, sid string, pool *licence.Pool) (*licence.Slot, error) {
	_, span := sp.start(ctx, enginetrace.SpanLicence, sid)
	slot, err := pool.Acquire()
	enginetrace.End(span, err)
	return slot, err
}

// result marks a session output on the session span.
func (sp *spans) result(span trace.Span, r engine.Result) {
	if !span.IsRecording() {
		return
	}
	if r.Err != nil {
		span.AddEvent(enginetrace.EventResult, trace.WithAttributes(enginetrace.KeyCode.Int(aserr.CodeOf(r.Err))))
		return
	}
	span.AddEvent(enginetrace.EventResult, trace.WithAttributes(enginetrace.KeyStatus.String(r.Status.String())))
}
