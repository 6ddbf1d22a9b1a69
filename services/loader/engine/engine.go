// Package engine defines the engine a loader hosts, shaped after the AIGES engine ABI
// (Init/Fini, once exec, session Create/Write/Read-or-callback/Destroy), in plain Go types
// so that Go built-ins, C shared libraries and Python wrappers can sit behind one interface.
//
//	e, _ := engine.Lookup("echo")
//	_ = e.Init(ctx, nil)
//	resp, err := e.Once(ctx, engine.Request{Inputs: []engine.Payload{{Meta: engine.Meta{Name: "text"}, Data: []byte("hi")}}})
//	s, _ := e.NewSession(ctx, engine.SessionParams{Tag: "sid-1"}, func(r engine.Result) { ... })
//	_ = s.Write(ctx, engine.Frame{Status: engine.StatusEnd, Inputs: ...}) // emit is called with the END output
//	_ = s.Close()
//	_ = e.Fini(ctx)
package engine

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
)

// DataType is the kind of bytes a payload carries (AIGES DataType, plus Other).
type DataType int

// Data types.
const (
	DataText DataType = iota
	DataAudio
	DataImage
	DataVideo
	DataOther
)

// Status is the AIGES data status of a frame or output.
type Status int

// Data statuses.
const (
	StatusBegin Status = iota
	StatusContinue
	StatusEnd
	StatusOnce
)

// String returns the status name.
func (s Status) String() string {
	switch s {
	case StatusBegin:
		return "begin"
	case StatusContinue:
		return "continue"
	case StatusEnd:
		return "end"
	case StatusOnce:
		return "once"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// Meta names one input or output and carries its attributes (encoding, sample_rate, ...).
type Meta struct {
	Name  string
	Type  DataType
	Attrs map[string]string
}

// Payload is one named data item.
type Payload struct {
	Meta
	Data []byte
}

// Request is a once request (AIGES wrapperExec).
type Request struct {
	// Tag identifies the request in engine logs (the AIGES usrTag, usually the sid).
	Tag     string
	Headers map[string]string
	Params  map[string]string
	// Expect lists the outputs the caller accepts.
	Expect []Meta
	Inputs []Payload
	PsrIDs []uint32
}

// Response is the result of a once request.
type Response struct {
	Outputs []Payload
}

// SessionParams opens a session (AIGES wrapperCreate).
type SessionParams struct {
	Tag     string
	Headers map[string]string
	Params  map[string]string
	Expect  []Meta
	PsrIDs  []uint32
}

// Frame is one ordered input batch of a session (AIGES wrapperWrite).
type Frame struct {
	// SyncID orders the frames of a session from 0.
	SyncID int32
	Status Status
	Inputs []Payload
}

// Result is one output of a session. A non-nil Err ends the session with that error.
type Result struct {
	Status  Status
	Outputs []Payload
	Err     error
	// Engine is the time the engine spent producing this result, when it knows it.
	Engine time.Duration
}

// Emit receives the results of a session. Engines may call it from any goroutine, also
// from inside Write; it may block until the consumer takes the result, and returns at
// once (dropping the result) after the session was closed.
type Emit func(Result)

// Engine is one loaded engine. Once and NewSession must be safe for concurrent use.
type Engine interface {
	// Name is the engine's name as configured (for example "echo").
	Name() string
	// Init is called once before any request with the engine's configuration.
	Init(ctx context.Context, cfg map[string]string) error
	// Fini is called once at shutdown, after every session ended.
	Fini(ctx context.Context) error
	// Once runs a one-shot request.
	Once(ctx context.Context, req Request) (Response, error)
	// NewSession opens a session whose results are delivered to emit. A sync-mode engine
	// (wrapperRead) is adapted by calling Read after each Write and emitting what it returns.
	NewSession(ctx context.Context, p SessionParams, emit Emit) (Session, error)
}

// Session is one open engine session. Write is called by one goroutine at a time, with
// frames in sync_id order; Close is called exactly once (AIGES wrapperDestroy) when the
// session ends, errs, expires or is aborted.
type Session interface {
	Write(ctx context.Context, f Frame) error
	Close() error
}

// Factory builds a fresh, uninitialised engine.
type Factory func() Engine

var builtins = map[string]Factory{
	"echo": func() Engine { return NewEcho() },
}

// Lookup returns a new instance of the built-in engine called name.
func Lookup(name string) (Engine, error) {
	f, ok := builtins[name]
	if !ok {
		return nil, fmt.Errorf("engine %q (built-ins: %v): %w", name, Builtins(), aserr.ErrInvalidParam)
	}
	return f(), nil
}

// Builtins lists the names of the built-in engines.
func Builtins() []string {
	out := make([]string, 0, len(builtins))
	for n := range builtins {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// CheckOutputs reports aserr.ErrInvalidOutput (10106) when an output's name is not among
// the expected ones. An empty expect list accepts everything.
func CheckOutputs(expect []Meta, outs []Payload) error {
	if len(expect) == 0 {
		return nil
	}
	for _, o := range outs {
		found := false
		for _, e := range expect {
			if e.Name == o.Name {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("output %q not among the expected outputs: %w", o.Name, aserr.ErrInvalidOutput)
		}
	}
	return nil
}
