// Package cabi hosts a C/C++ engine built on the AIGES ABI (a libwrapper.so compiled
// against services/loader/include/wrapper.h) behind engine.Engine.
//
//	e, err := cabi.Open("./libwrapper.so", cabi.Options{Async: false, Log: log, Registry: reg})
//	if err != nil { ... }                         // names any missing required symbol
//	_ = e.Init(ctx, map[string]string{"k": "v"}) // wrapperInit + wrapperSetCtrl
//	resp, err := e.Once(ctx, req)                 // wrapperExec → copy → wrapperExecFree
//	s, err := e.NewSession(ctx, p, emit)          // wrapperCreate; Write → wrapperWrite (+ wrapperRead)
//	_ = s.Close()                                 // wrapperDestroy
//	_ = e.Fini(ctx)                               // wrapperFini
//
// Memory: input lists are built in C memory and freed right after each call; outputs are
// copied into Go before wrapperExecFree (or before the callback returns). Async results
// reach Go through exported trampolines keyed by the usrTag string, never a Go pointer.
// The library stays mapped after Fini (engines may leave threads behind).
package cabi

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -ldl
#include "shim.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/loader/engine"
	"github.com/athenaserving/asf/services/loader/enginetrace"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Options configure a C engine.
type Options struct {
	// Name is the engine's name (default "c").
	Name string
	// Async selects async mode: once requests use wrapperExecAsync and sessions get their
	// results through the callback instead of wrapperRead.
	Async bool
	// Log receives the engine's trace-log callbacks (debug level) and warnings.
	Log zerolog.Logger
	// Registry receives asf_loader_engine_meter_total{key}, fed by the metering callback.
	// Nil: not exported.
	Registry *prometheus.Registry
	// OnceTimeout bounds an async once request whose ctx has no deadline (default 30 s);
	// it is also the timeout handed to wrapperExecAsync.
	OnceTimeout time.Duration
	// SyncEndWait is how long a sync session keeps calling wrapperRead after the END frame
	// until an output with status END appears (default 2 s); then the session ends with
	// an empty END result.
	SyncEndWait time.Duration
	// ResultsAtEnd is AIGES realTimeRlt=false: a sync-mode session calls wrapperRead only
	// after its last input frame (status END), not after every wrapperWrite.
	ResultsAtEnd bool
}

// Symbol names, in wrapper.h order.
const (
	symSetCtrl   = "wrapperSetCtrl"
	symInit      = "wrapperInit"
	symFini      = "wrapperFini"
	symError     = "wrapperError"
	symVersion   = "wrapperVersion"
	symLoadRes   = "wrapperLoadRes"
	symUnloadRes = "wrapperUnloadRes"
	symCreate    = "wrapperCreate"
	symWrite     = "wrapperWrite"
	symRead      = "wrapperRead"
	symDestroy   = "wrapperDestroy"
	symExec      = "wrapperExec"
	symExecFree  = "wrapperExecFree"
	symExecAsync = "wrapperExecAsync"
	symDebugInfo = "wrapperDebugInfo"
)

// Required lists the symbols a library must export; the others are optional.
var Required = []string{symInit, symFini, symError, symVersion, symCreate, symWrite, symRead, symDestroy, symExec, symExecFree}

// Optional lists the symbols a library may leave out.
var Optional = []string{symSetCtrl, symLoadRes, symUnloadRes, symDebugInfo, symExecAsync}

// Engine is a loaded libwrapper.so. It implements engine.Engine and engine.ResourceLoader.
type Engine struct {
	path  string
	opts  Options
	sym   map[string]unsafe.Pointer
	meter *prometheus.CounterVec

	meterKeys sync.Map // string → struct{}: keys seen, bounded by maxMeterKeys
	nKeys     atomic.Int32

	mu        sync.Mutex
	inited    bool
	graveyard []*C.char // usrTags of async once requests that timed out: the engine may still call back
}

var _ engine.Engine = (*Engine)(nil)
var _ engine.ResourceLoader = (*Engine)(nil)

// maxMeterKeys bounds the key label of asf_loader_engine_meter_total; later keys count as "other".
const maxMeterKeys = 32

// lastInit receives metering and trace callbacks whose usrTag is unknown.
var lastInit atomic.Pointer[Engine]

// Open loads the library at path and resolves its symbols. A missing required symbol
// fails with an error naming it (10107); missing optional ones are allowed.
func Open(path string, opts Options) (*Engine, error) {
	if opts.Name == "" {
		opts.Name = "c"
	}
	if opts.OnceTimeout <= 0 {
		opts.OnceTimeout = 30 * time.Second
	}
	if opts.SyncEndWait <= 0 {
		opts.SyncEndWait = 2 * time.Second
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var errbuf [512]C.char
	h := C.asf_dlopen(cpath, &errbuf[0], C.size_t(len(errbuf)))
	if h == nil {
		return nil, fmt.Errorf("engine library %s: %s: %w", path, C.GoString(&errbuf[0]), aserr.ErrInvalidParam)
	}
	e := &Engine{path: path, opts: opts, sym: map[string]unsafe.Pointer{}}
	var missing []string
	for _, name := range append(append([]string{}, Required...), Optional...) {
		cname := C.CString(name)
		p := C.asf_dlsym(h, cname)
		C.free(unsafe.Pointer(cname))
		if p != nil {
			e.sym[name] = p
		}
	}
	for _, name := range Required {
		if e.sym[name] == nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("engine library %s: missing required symbol %v: %w", path, missing, aserr.ErrInvalidParam)
	}
	if opts.Async && e.sym[symExecAsync] == nil {
		opts.Log.Warn().Str("path", path).Msg("async engine without wrapperExecAsync: once requests use wrapperExec")
	}
	if opts.Registry != nil {
		cv := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asf_loader_engine_meter_total", Help: "Units counted by the engine's metering callback, by meter key.",
		}, []string{"key"})
		if err := opts.Registry.Register(cv); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("engine metrics: %w", err)
			}
			cv = are.ExistingCollector.(*prometheus.CounterVec)
		}
		e.meter = cv
	}
	return e, nil
}

// Name returns the configured engine name.
func (e *Engine) Name() string { return e.opts.Name }

// Path returns the library's path.
func (e *Engine) Path() string { return e.path }

// Has reports whether the library exports symbol.
func (e *Engine) Has(symbol string) bool { return e.sym[symbol] != nil }

// Version returns wrapperVersion().
func (e *Engine) Version() string { return C.GoString(C.asf_version(e.sym[symVersion])) }

// errorText returns wrapperError(code).
func (e *Engine) errorText(code int) string {
	s := C.asf_error(e.sym[symError], C.int(code))
	if s == nil {
		return fmt.Sprintf("engine error %d", code)
	}
	return C.GoString(s)
}

// fail turns a non-zero engine code into an *Error.
func (e *Engine) fail(call string, kind *aserr.Error, code int) error {
	if code == 0 {
		return &Error{Call: call, Code: kind.Code, Text: kind.Msg, kind: kind}
	}
	return &Error{Call: call, Code: code, Text: e.errorText(code), kind: kind}
}

// Init calls wrapperInit with cfg, then hands the metering and trace callbacks to
// wrapperSetCtrl when the library exports it.
func (e *Engine) Init(_ context.Context, cfg map[string]string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.inited {
		return fmt.Errorf("engine %s: init twice: %w", e.opts.Name, aserr.ErrInvalidOp)
	}
	c := cParams(cfg)
	rc := C.asf_init(e.sym[symInit], c)
	C.asf_free_params(c)
	if rc != 0 {
		return e.fail(symInit, ErrInit, int(rc))
	}
	lastInit.Store(e)
	if f := e.sym[symSetCtrl]; f != nil {
		if rc := C.asf_set_ctrl(f); rc != 0 {
			e.opts.Log.Warn().Int("code", int(rc)).Str("text", e.errorText(int(rc))).Msg("wrapperSetCtrl failed: no metering or trace callbacks")
		}
	}
	e.inited = true
	e.opts.Log.Info().Str("path", e.path).Str("version", e.Version()).Bool("async", e.opts.Async).Msg("engine loaded")
	return nil
}

// Fini calls wrapperFini; later calls fail with 10101.
func (e *Engine) Fini(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.inited {
		return nil
	}
	e.inited = false
	lastInit.CompareAndSwap(e, nil)
	rc := C.asf_fini(e.sym[symFini])
	for _, t := range e.graveyard {
		C.free(unsafe.Pointer(t))
	}
	e.graveyard = nil
	if rc != 0 {
		return e.fail(symFini, ErrFini, int(rc))
	}
	return nil
}

func (e *Engine) ready() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.inited {
		return fmt.Errorf("engine %s: %w", e.opts.Name, aserr.ErrReleased)
	}
	return nil
}

// Once runs a once request: wrapperExec (sync mode) or wrapperExecAsync (async mode).
func (e *Engine) Once(ctx context.Context, req engine.Request) (engine.Response, error) {
	if err := e.ready(); err != nil {
		return engine.Response{}, err
	}
	if e.opts.Async && e.sym[symExecAsync] != nil {
		return e.onceAsync(ctx, req)
	}
	key := tags.add(req.Tag, &target{eng: e, span: recording(ctx)})
	defer tags.remove(key)
	tag := C.CString(key)
	defer C.free(unsafe.Pointer(tag))
	params := cParams(req.Params)
	defer C.asf_free_params(params)
	data := cData(req.Inputs, engine.StatusOnce, nil)
	defer C.asf_free_data(data)
	psr, n := cPsr(req.PsrIDs)
	defer C.free(unsafe.Pointer(psr))

	var out C.pDataList
	rc := C.asf_exec(e.sym[symExec], tag, params, data, &out, psr, n)
	outs, _ := goData(out)
	if out != nil {
		C.asf_exec_free(e.sym[symExecFree], tag, &out)
	}
	if rc != 0 {
		return engine.Response{}, e.fail(symExec, ErrExec, int(rc))
	}
	return engine.Response{Outputs: outs}, nil
}

func (e *Engine) onceAsync(ctx context.Context, req engine.Request) (engine.Response, error) {
	timeout := e.opts.OnceTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ch := make(chan onceResult, 1)
	key := tags.add(req.Tag, &target{eng: e, once: ch, span: recording(ctx)})
	tag := C.CString(key)
	params := cParams(req.Params)
	data := cData(req.Inputs, engine.StatusOnce, nil)
	psr, n := cPsr(req.PsrIDs)
	ms := timeout.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	rc := C.asf_exec_async(e.sym[symExecAsync], tag, params, data, C.int(ms), psr, n)
	C.asf_free_params(params)
	C.asf_free_data(data)
	C.free(unsafe.Pointer(psr))
	if rc != 0 {
		tags.remove(key)
		C.free(unsafe.Pointer(tag))
		return engine.Response{}, e.fail(symExecAsync, ErrExecAsync, int(rc))
	}
	select {
	case r := <-ch:
		C.free(unsafe.Pointer(tag)) // the callback has returned: the engine is done with the tag
		if r.err != nil {
			return engine.Response{}, r.err
		}
		return engine.Response{Outputs: r.outs}, nil
	case <-ctx.Done():
		if tags.take(key) == nil {
			// The callback took the target at the same moment: its result is on the way.
			r := <-ch
			C.free(unsafe.Pointer(tag))
			if r.err != nil {
				return engine.Response{}, r.err
			}
			return engine.Response{Outputs: r.outs}, nil
		}
		e.mu.Lock()
		e.graveyard = append(e.graveyard, tag)
		e.mu.Unlock()
		return engine.Response{}, fmt.Errorf("engine %s: wrapperExecAsync: no callback: %w", e.opts.Name, ctx.Err())
	}
}

// LoadResource calls wrapperLoadRes with data (personalisation, type DataPer) under id.
func (e *Engine) LoadResource(_ context.Context, id uint32, data []engine.Payload) error {
	if err := e.ready(); err != nil {
		return err
	}
	f := e.sym[symLoadRes]
	if f == nil {
		return fmt.Errorf("engine %s has no %s: %w", e.opts.Name, symLoadRes, aserr.ErrInvalidOp)
	}
	d := cData(data, engine.StatusOnce, nil)
	rc := C.asf_load_res(f, d, C.uint(id))
	C.asf_free_data(d)
	if rc != 0 {
		return e.fail(symLoadRes, ErrLoadRes, int(rc))
	}
	return nil
}

// UnloadResource calls wrapperUnloadRes(id).
func (e *Engine) UnloadResource(_ context.Context, id uint32) error {
	if err := e.ready(); err != nil {
		return err
	}
	f := e.sym[symUnloadRes]
	if f == nil {
		return fmt.Errorf("engine %s has no %s: %w", e.opts.Name, symUnloadRes, aserr.ErrInvalidOp)
	}
	if rc := C.asf_unload_res(f, C.uint(id)); rc != 0 {
		return e.fail(symUnloadRes, ErrUnloadRes, int(rc))
	}
	return nil
}

// NewSession calls wrapperCreate: with the result callback in async mode, NULL in sync mode.
func (e *Engine) NewSession(ctx context.Context, p engine.SessionParams, emit engine.Emit) (engine.Session, error) {
	if err := e.ready(); err != nil {
		return nil, err
	}
	s := &Session{e: e, emit: emit}
	t := &target{eng: e, span: recording(ctx)}
	if t.span != nil {
		t.session = enginetrace.SessionSpan(ctx)
	}
	s.t = t
	if e.opts.Async {
		t.emit = s.deliver
	}
	s.key = tags.add(p.Tag, t)
	s.tag = C.CString(s.key)
	params := cParams(p.Params)
	psr, n := cPsr(p.PsrIDs)
	async := C.int(0)
	if e.opts.Async {
		async = 1
	}
	var errNum C.int
	h := C.asf_create(e.sym[symCreate], s.tag, params, async, psr, n, &errNum)
	C.asf_free_params(params)
	C.free(unsafe.Pointer(psr))
	if h == nil || errNum != 0 {
		tags.remove(s.key)
		C.free(unsafe.Pointer(s.tag))
		if h != nil {
			C.asf_destroy(e.sym[symDestroy], h)
		}
		return nil, e.fail(symCreate, ErrCreate, int(errNum))
	}
	s.h = h
	return s, nil
}

// Session is one engine session (a wrapperCreate handle).
type Session struct {
	e    *Engine
	emit engine.Emit
	t    *target
	key  string
	tag  *C.char
	h    unsafe.Pointer

	gotEnd atomic.Bool
	closed atomic.Bool
}

// deliver is the async callback's path into the session.
func (s *Session) deliver(r engine.Result) {
	if s.closed.Load() {
		return
	}
	if r.Status == engine.StatusEnd {
		s.gotEnd.Store(true)
	}
	s.emit(r)
}

// Write calls wrapperWrite with the frame's inputs (status and seq on every node); in
// sync mode it then calls wrapperRead (with Options.ResultsAtEnd only after the END
// frame) and emits what it returns, and after the END frame keeps reading until an END
// output (bounded by Options.SyncEndWait).
func (s *Session) Write(ctx context.Context, f engine.Frame) error {
	if s.closed.Load() {
		return fmt.Errorf("engine session %s: %w", s.key, aserr.ErrInvalidHandle)
	}
	s.t.setSpan(recording(ctx)) // trace callbacks from now on go to this frame's span
	data := cData(f.Inputs, f.Status, frameDesc(f))
	rc := C.asf_write(s.e.sym[symWrite], s.h, data)
	C.asf_free_data(data)
	if rc != 0 {
		return s.e.fail(symWrite, ErrWrite, int(rc))
	}
	if s.e.opts.Async || (s.e.opts.ResultsAtEnd && f.Status != engine.StatusEnd) {
		return nil
	}
	if err := s.read(); err != nil {
		return err
	}
	if f.Status != engine.StatusEnd || s.gotEnd.Load() {
		return nil
	}
	deadline := time.Now().Add(s.e.opts.SyncEndWait)
	wait := time.Millisecond
	for !s.gotEnd.Load() {
		if time.Now().After(deadline) {
			s.emit(engine.Result{Status: engine.StatusEnd})
			s.gotEnd.Store(true)
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
		if err := s.read(); err != nil {
			return err
		}
	}
	return nil
}

func (s *Session) read() error {
	var out C.pDataList
	rc := C.asf_read(s.e.sym[symRead], s.h, &out)
	if rc != 0 {
		return s.e.fail(symRead, ErrRead, int(rc))
	}
	if out == nil {
		return nil
	}
	outs, st := goData(out)
	if st == engine.StatusEnd {
		s.gotEnd.Store(true)
	}
	s.emit(engine.Result{Status: st, Outputs: outs})
	return nil
}

// DebugInfo returns wrapperDebugInfo(handle), or "" when the library has none.
func (s *Session) DebugInfo() string {
	f := s.e.sym[symDebugInfo]
	if f == nil || s.closed.Load() {
		return ""
	}
	return C.GoString(C.asf_debug_info(f, s.h))
}

// Close calls wrapperDestroy; later callbacks for the session are dropped.
func (s *Session) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	rc := C.asf_destroy(s.e.sym[symDestroy], s.h)
	tags.remove(s.key)
	C.free(unsafe.Pointer(s.tag))
	if rc != 0 {
		return s.e.fail(symDestroy, ErrDestroy, int(rc))
	}
	return nil
}
