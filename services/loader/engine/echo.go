package engine

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
)

// Echo is the built-in echo engine: outputs are the inputs (names, data, attributes).
// When the caller expects exactly one output, every output takes that name and that
// entry's attributes are overlaid on its own. In a session every frame yields one result
// whose status mirrors the frame's.
type Echo struct {
	mu     sync.Mutex
	inited bool
}

// NewEcho returns an uninitialised echo engine.
func NewEcho() *Echo { return &Echo{} }

// Name returns "echo".
func (e *Echo) Name() string { return "echo" }

// Init marks the engine ready.
func (e *Echo) Init(context.Context, map[string]string) error {
	e.mu.Lock()
	e.inited = true
	e.mu.Unlock()
	return nil
}

// Fini marks the engine released: later calls fail with 10101.
func (e *Echo) Fini(context.Context) error {
	e.mu.Lock()
	e.inited = false
	e.mu.Unlock()
	return nil
}

func (e *Echo) ready() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.inited {
		return fmt.Errorf("echo: %w", aserr.ErrReleased)
	}
	return nil
}

// Once echoes the request's inputs.
func (e *Echo) Once(ctx context.Context, req Request) (Response, error) {
	if err := e.ready(); err != nil {
		return Response{}, err
	}
	if err := ctx.Err(); err != nil {
		return Response{}, err
	}
	return Response{Outputs: echoPayloads(req.Expect, req.Inputs)}, nil
}

// NewSession opens an echo session.
func (e *Echo) NewSession(_ context.Context, p SessionParams, emit Emit) (Session, error) {
	if err := e.ready(); err != nil {
		return nil, err
	}
	return &echoSession{expect: p.Expect, emit: emit}, nil
}

type echoSession struct {
	expect []Meta
	emit   Emit
	ended  bool
}

func (s *echoSession) Write(_ context.Context, f Frame) error {
	if s.ended {
		return fmt.Errorf("echo: write after end: %w", aserr.ErrInvalidOp)
	}
	start := time.Now()
	outs := echoPayloads(s.expect, f.Inputs)
	s.ended = f.Status == StatusEnd
	s.emit(Result{Status: f.Status, Outputs: outs, Engine: time.Since(start)})
	return nil
}

func (s *echoSession) Close() error { return nil }

func echoPayloads(expect []Meta, in []Payload) []Payload {
	out := make([]Payload, len(in))
	for i, p := range in {
		o := Payload{Meta: Meta{Name: p.Name, Type: p.Type, Attrs: maps.Clone(p.Attrs)}, Data: p.Data}
		if len(expect) == 1 {
			o.Name = expect[0].Name
			if len(expect[0].Attrs) > 0 {
				if o.Attrs == nil {
					o.Attrs = make(map[string]string, len(expect[0].Attrs))
				}
				maps.Copy(o.Attrs, expect[0].Attrs)
			}
		}
		out[i] = o
	}
	return out
}
