package aserr

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestCodeOfWrapped(t *testing.T) {
	err := fmt.Errorf("create session s1: %w", ErrLicenceFull)
	if got := CodeOf(err); got != 10110 {
		t.Fatalf("CodeOf = %d, want 10110", got)
	}
	if !errors.Is(err, New(10110, "other text")) {
		t.Fatal("errors.Is should match on code")
	}
	if errors.Is(err, ErrNotFound) {
		t.Fatal("errors.Is matched a different code")
	}
	if MessageOf(err) != "create session s1: licence not enough" {
		t.Fatalf("MessageOf = %q", MessageOf(err))
	}
}

// engineErr is a type joining two coded errors, like an engine call's error.
type engineErr struct{}

func (engineErr) Error() string   { return "engine wrapperExec: boom (code 20001)" }
func (engineErr) Unwrap() []error { return []error{New(20001, "boom"), ErrInvalidOp} }

// The reason wrapped around a coded error stays in the client message; context wrapped
// around an error received from another service does not.
func TestMessageOfKeepsReason(t *testing.T) {
	reason := fmt.Errorf("output %q not among the expected outputs: %w", "boxes", ErrInvalidOutput)
	received := Received(CodeOf(reason), MessageOf(reason)) // what the next service rebuilds
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, "success"},
		{"bare", ErrInvalidOutput, "invalid output or parameter"},
		{"bare newf", Newf(10106, "output %q unexpected", "x"), `output "x" unexpected`},
		{"reason", reason, `output "boxes" not among the expected outputs: invalid output or parameter`},
		{"nested reasons", fmt.Errorf("exec: %w", reason), `exec: output "boxes" not among the expected outputs: invalid output or parameter`},
		{"code first", fmt.Errorf("%w: seq %d", ErrBadRequest, 3), "invalid request: seq 3"},
		{"received", received, `output "boxes" not among the expected outputs: invalid output or parameter`},
		{"context around received", fmt.Errorf("loader 10.0.0.1:9000 once: %w", received), `output "boxes" not among the expected outputs: invalid output or parameter`},
		{"joined", fmt.Errorf("write: %w", engineErr{}), "boom"},
		{"several %w", fmt.Errorf("%w: %w", ErrNetwork, errors.New("dial")), "network error"},
		{"errors.Join", errors.Join(errors.New("x"), ErrNoEngine), "no engine node available"},
		{"no code", fmt.Errorf("a: %w", errors.New("b")), "a: b"},
	}
	for _, tc := range cases {
		if got := MessageOf(tc.err); got != tc.want {
			t.Errorf("%s: MessageOf = %q, want %q", tc.name, got, tc.want)
		}
	}
	if CodeOf(received) != 10106 || !errors.Is(fmt.Errorf("x: %w", received), ErrInvalidOutput) {
		t.Fatal("a received error keeps its code")
	}
}

func TestCodeOfContext(t *testing.T) {
	cases := map[error]int{
		nil:                      0,
		context.DeadlineExceeded: 10102,
		context.Canceled:         10222,
		errors.New("boom"):       11502,
	}
	for err, want := range cases {
		if got := CodeOf(err); got != want {
			t.Errorf("CodeOf(%v) = %d, want %d", err, got, want)
		}
	}
}

// Every code is defined once: a new code must not reuse another's number.
func TestCodesDistinct(t *testing.T) {
	seen := map[int]string{}
	for _, e := range []*Error{
		ErrInvalidOp, ErrInvalidHandle, ErrInvalidData, ErrReleased, ErrOnceTimeout, ErrRepeatedSession,
		ErrInvalidOutput, ErrInvalidParam, ErrEngineCrashed, ErrLicenceFull, ErrSessionTimeout, ErrInvalidResult,
		ErrBadRequest, ErrReadTimeout, ErrAppID, ErrNotFound, ErrNetwork, ErrNoEngine, ErrInternal, ErrResNotFound,
		ErrUpstreamUnreachable, ErrUpstreamTimeout, ErrUpstreamStatus, ErrUpstreamClosed,
		ErrUnauthenticated, ErrForbidden, ErrRevisionPruned,
	} {
		if prev, ok := seen[e.Code]; ok {
			t.Errorf("code %d: %q and %q", e.Code, prev, e.Msg)
		}
		seen[e.Code] = e.Msg
	}
}
