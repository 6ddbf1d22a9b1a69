package engine

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
)

// Echo is the built-in echo engine: outputs are the inputs (names, data, attributes).
// When the caller expects exactly one output, every output takes that name and that
// entry's attributes are overlaid on its own. In a session every frame yields one result
// whose status mirrors the frame's.
//
// Two engine-config keys make configuration changes visible: "attr.<name>=<value>" adds
// that attribute to every output, and "init-error=<text>" makes Init fail with 10107 and
// that text (a configuration the engine refuses).
type Echo struct {
	mu     sync.Mutex
	inited bool
	attrs  map[string]string // from "attr.<name>" config keys
}

// NewEcho returns an uninitialised echo engine.
func NewEcho() *Echo { return &Echo{} }

// Name returns "echo".
func (e *Echo) Name() string { return "echo" }

// Init marks the engine ready; see Echo for the config keys it reads.
func (e *Echo) Init(_ context.Context, cfg map[string]string) error {
	if msg, ok := cfg["init-error"]; ok {
		return fmt.Errorf("echo init: %s: %w", msg, aserr.ErrInvalidParam)
	}
	var attrs map[string]string
	for k, v := range cfg {
		if name, ok := strings.CutPrefix(k, "attr."); ok && name != "" {
			if attrs == nil {
				attrs = map[string]string{}
			}
			attrs[name] = v
		}
	}
	e.mu.Lock()
	e.inited = true
	e.attrs = attrs
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

func (e *Echo) ready() (map[string]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.inited {
		return nil, fmt.Errorf("echo: %w", aserr.ErrReleased)
	}
	return e.attrs, nil
}

// Once echoes the request's inputs.
func (e *Echo) Once(ctx context.Context, req Request) (Response, error) {
	attrs, err := e.ready()
	if err != nil {
		return Response{}, err
	}
	if err := ctx.Err(); err != nil {
		return Response{}, err
	}
	return Response{Outputs: echoPayloads(req.Expect, req.Inputs, attrs)}, nil
}

// NewSession opens an echo session.
func (e *Echo) NewSession(_ context.Context, p SessionParams, emit Emit) (Session, error) {
	attrs, err := e.ready()
	if err != nil {
		return nil, err
	}
	return &echoSession{expect: p.Expect, emit: emit, attrs: attrs}, nil
}

type echoSession struct {
	expect []Meta
	emit   Emit
	attrs  map[string]string
	ended  bool
}

func (s *echoSession) Write(_ context.Context, f Frame) error {
	if s.ended {
		return fmt.Errorf("echo: write after end: %w", aserr.ErrInvalidOp)
	}
	start := time.Now()
	outs := echoPayloads(s.expect, f.Inputs, s.attrs)
	s.ended = f.Status == StatusEnd
	s.emit(Result{Status: f.Status, Outputs: outs, Engine: time.Since(start)})
	return nil
}

func (s *echoSession) Close() error { return nil }

func echoPayloads(expect []Meta, in []Payload, attrs map[string]string) []Payload {
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
		if len(attrs) > 0 {
			if o.Attrs == nil {
				o.Attrs = make(map[string]string, len(attrs))
			}
			maps.Copy(o.Attrs, attrs)
		}
		out[i] = o
	}
	return out
}
