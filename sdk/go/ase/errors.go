package ase

import (
	"errors"
	"fmt"
)

// Error is a failure reported by the edge: an ASE code with its message and the sid of
// the request (Cid names the sub-session on a multiplexed socket), or a gateway refusal
// (authentication, limits) with code 0 and the HTTP status of the refused request.
type Error struct {
	Code       int
	Message    string
	Sid        string
	Cid        string
	HTTPStatus int
}

// Error formats the code, message and sid.
func (e *Error) Error() string {
	switch {
	case e.Code == 0 && e.HTTPStatus != 0:
		return fmt.Sprintf("refused (HTTP %d): %s", e.HTTPStatus, e.Message)
	case e.Code == 0:
		return "refused: " + e.Message
	case e.Sid != "":
		return fmt.Sprintf("code %d: %s (sid %s)", e.Code, e.Message, e.Sid)
	}
	return fmt.Sprintf("code %d: %s", e.Code, e.Message)
}

// Codes the client acts on.
const (
	// CodeLicence is "licence not enough": every engine slot is busy; Once retries it.
	CodeLicence = 10110
)

// CodeOf returns the ASE code of err (0 when it carries none).
func CodeOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// SidOf returns the sid of err ("" when it carries none).
func SidOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Sid
	}
	return ""
}
