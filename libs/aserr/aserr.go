// Package aserr defines the numeric ASE/AIGES error codes that travel end to end,
// from an engine through loader, atom and webgate to the client.
//
//	var ErrX = aserr.New(10110, "licence not enough")
//	return fmt.Errorf("create session %s: %w", sid, aserr.ErrLicenceFull)
//	code := aserr.CodeOf(err) // 10110
//	msg := aserr.MessageOf(err) // "create session s1: licence not enough"
//
// The text wrapped around a coded error is its reason and stays in the message that
// reaches the client. A coded error received from another service (Received, as
// grpcx.FromStatus builds it) already holds that service's full message: text wrapped
// around it on the receiving side (a loader's address, say) is context and is left out.
package aserr

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Error is an error with a numeric ASE/AIGES code.
type Error struct {
	Code int
	Msg  string
	// received marks an error rebuilt from another service's answer (see Received).
	received bool
}

// New returns an *Error with code and message.
func New(code int, msg string) *Error { return &Error{Code: code, Msg: msg} }

// Received returns the coded error another service answered with: code and message as
// that service rendered them (with its reasons). MessageOf leaves out whatever this
// side wraps around it.
func Received(code int, msg string) *Error { return &Error{Code: code, Msg: msg, received: true} }

// Newf returns an *Error with code and a formatted message.
func Newf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string { return fmt.Sprintf("%s (code %d)", e.Msg, e.Code) }

// Is matches any *Error with the same code, so errors.Is(err, ErrLicenceFull) works on
// errors rebuilt from the wire.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// Loader and engine codes (specs/aiges-abi.md §5).
var (
	ErrInvalidOp       = New(10003, "invalid operation")
	ErrInvalidHandle   = New(10008, "invalid handle")
	ErrInvalidData     = New(10009, "invalid data")
	ErrReleased        = New(10101, "engine instance inactive or already released")
	ErrOnceTimeout     = New(10102, "once request timeout")
	ErrRepeatedSession = New(10105, "repeated session")
	ErrInvalidOutput   = New(10106, "invalid output or parameter")
	ErrInvalidParam    = New(10107, "invalid parameter value")
	ErrEngineCrashed   = New(10109, "engine crashed")
	ErrLicenceFull     = New(10110, "licence not enough")
)

// Public edge codes (specs/ase-protocol.md §6).
var (
	ErrSessionTimeout = New(10114, "session timeout")
	ErrInvalidResult  = New(10160, "invalid result message from upstream")
	ErrBadRequest     = New(10163, "invalid request")
	ErrReadTimeout    = New(10200, "read timeout")
	ErrAppID          = New(10313, "app_id and api_key does not match")
	ErrNotFound       = New(10404, "capability not found")
	ErrNetwork        = New(10222, "network error")
	ErrNoEngine       = New(10223, "no engine node available")
	ErrInternal       = New(11502, "unexpected server error")
)

// Personalisation resource codes (docs/contracts.md): a request naming a resource
// (header res_id / patch_id) that its app has not uploaded, or that was deleted.
var (
	ErrResNotFound = New(10166, "personalisation resource not found")
)

// Third-party API codes of the loader's forward engine (docs/protocol.md, "Forwarding to
// a third-party API"), beside 10222/10223: the upstream API could not be reached, did not
// answer in time, answered with an error status, or closed a session before its end. A
// malformed answer is ErrInvalidResult (10160). Atom retries none of them on another
// loader: the forward engine has already tried every configured upstream.
var (
	ErrUpstreamUnreachable = New(10224, "upstream unreachable")
	ErrUpstreamTimeout     = New(10225, "upstream timeout")
	ErrUpstreamStatus      = New(10226, "upstream error")
	ErrUpstreamClosed      = New(10227, "upstream closed the session")
)

// Polaris control-plane codes (docs/contracts.md, docs/operations.md): the caller is not
// authenticated, may not do the operation, or names a config revision that was pruned by
// the history retention.
var (
	ErrUnauthenticated = New(10401, "invalid or missing credentials")
	ErrForbidden       = New(10403, "operation not permitted for this caller")
	ErrRevisionPruned  = New(10410, "config revision no longer kept")
)

// CodeOf returns the code carried by err: 0 for nil, the *Error's code when err wraps
// one, 10102 for a deadline, 10222 for a cancellation and 11502 for anything else.
func CodeOf(err error) int {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return ErrOnceTimeout.Code
	case errors.Is(err, context.Canceled):
		return ErrNetwork.Code
	}
	return ErrInternal.Code
}

// MessageOf returns the client-facing message of err:
//   - for an *Error wrapped by single-error wraps (fmt.Errorf with one %w), err's text with
//     the *Error's " (code N)" dropped, so the wraps' reason stays: `output "boxes" not
//     among the expected outputs: invalid output or parameter`;
//   - for a Received *Error, its message alone, whatever wraps it;
//   - when the chain passes an error that joins several (errors.Join, several %w, an
//     Unwrap() []error such as an engine call's error), the first *Error's message;
//   - for an error with no code, err's text; for nil, "success".
func MessageOf(err error) string {
	if err == nil {
		return "success"
	}
	for cur := err; cur != nil; {
		if e, ok := cur.(*Error); ok {
			if e.received || cur == err {
				return e.Msg
			}
			text, inner := err.Error(), e.Error()
			if i := strings.Index(text, inner); i >= 0 {
				return text[:i] + e.Msg + text[i+len(inner):]
			}
			return e.Msg
		}
		u, ok := cur.(interface{ Unwrap() error })
		if !ok {
			break
		}
		cur = u.Unwrap()
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Msg
	}
	return err.Error()
}
