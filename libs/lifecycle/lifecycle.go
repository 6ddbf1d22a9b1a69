// Package lifecycle is the start-up and shutdown plumbing every service shares: a stack of
// closers that releases, last first, what a constructor opened before it failed; StopWithin,
// "stop gracefully, then at once when the deadline comes"; and signal handling where the
// first SIGINT/SIGTERM asks for a graceful shutdown and a second one exits at once.
//
//	var undo lifecycle.Stack
//	defer undo.CloseIf(&err) // on any error below, close what was opened, last first
//	ln, err := net.Listen("tcp", addr)
//	if err != nil {
//	    return nil, err
//	}
//	undo.Push(ln.Close)
//	...
//	// in Shutdown:
//	lifecycle.StopWithin(ctx, grpcServer)
package lifecycle

import (
	"context"
	"errors"
)

// Stack is a list of closers run last first. The zero value is ready; it is not safe for
// concurrent use.
type Stack struct {
	fns []func() error
}

// Push adds a closer.
func (s *Stack) Push(fn func() error) { s.fns = append(s.fns, fn) }

// PushFunc adds a closer that returns nothing.
func (s *Stack) PushFunc(fn func()) { s.Push(func() error { fn(); return nil }) }

// Close runs every closer, last pushed first, and empties the stack. It returns their
// errors joined.
func (s *Stack) Close() error {
	var errs []error
	for i := len(s.fns) - 1; i >= 0; i-- {
		if err := s.fns[i](); err != nil {
			errs = append(errs, err)
		}
	}
	s.fns = nil
	return errors.Join(errs...)
}

// CloseIf runs Close when *err is not nil (a constructor's deferred clean-up on failure);
// the closers' own errors are dropped, the constructor's error is the one to report.
func (s *Stack) CloseIf(err *error) {
	if *err != nil {
		_ = s.Close()
	}
}

// Stopper is a server that can stop gracefully or at once (*grpc.Server).
type Stopper interface {
	GracefulStop()
	Stop()
}

// StopWithin stops s gracefully (for gRPC: GOAWAY, then wait for running calls) and, if
// ctx ends first, at once (running calls are cancelled). The funcs in meanwhile run after
// the graceful stop has begun, for work that must end for it to finish (long-lived streams).
// It returns once s has stopped.
func StopWithin(ctx context.Context, s Stopper, meanwhile ...func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.GracefulStop()
	}()
	for _, fn := range meanwhile {
		fn()
	}
	select {
	case <-done:
	case <-ctx.Done():
		s.Stop()
		<-done
	}
}
