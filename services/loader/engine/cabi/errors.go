package cabi

import (
	"fmt"

	"github.com/athenaserving/asf/libs/aserr"
)

// Loader codes for an engine call that returned an error (specs/aiges-abi.md §5). An
// *Error matches both its call's code here and the engine's own code with errors.Is;
// aserr.CodeOf reports the engine's code.
var (
	ErrInit      = aserr.New(10901, "engine init failed")
	ErrFini      = aserr.New(10902, "engine fini failed")
	ErrLoadRes   = aserr.New(10903, "engine load resource failed")
	ErrUnloadRes = aserr.New(10904, "engine unload resource failed")
	ErrCreate    = aserr.New(10905, "engine create session failed")
	ErrDestroy   = aserr.New(10906, "engine destroy session failed")
	ErrWrite     = aserr.New(10907, "engine write failed")
	ErrRead      = aserr.New(10908, "engine read failed")
	ErrExec      = aserr.New(10909, "engine exec failed")
	ErrExecAsync = aserr.New(10910, "engine exec async failed")
)

// Error is a non-zero code returned by an engine call, with the engine's wrapperError text.
type Error struct {
	// Call is the ABI function, for example "wrapperExec".
	Call string
	// Code is the engine's code, or the call's loader code when the engine gave none.
	Code int
	// Text is wrapperError(Code).
	Text string
	kind *aserr.Error
}

// Error returns "engine <call>: <text> (code <code>)".
func (e *Error) Error() string {
	return fmt.Sprintf("engine %s: %s (code %d)", e.Call, e.Text, e.Code)
}

// Unwrap returns the engine's coded error first (so aserr.CodeOf and aserr.MessageOf see
// the engine's code and text), then the call's loader code.
func (e *Error) Unwrap() []error {
	return []error{aserr.New(e.Code, e.Text), e.kind}
}
