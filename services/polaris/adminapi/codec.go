package adminapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/polaris/resource"
)

// ErrorBody is the JSON body of every error.
type ErrorBody struct {
	Error ErrorInfo `json:"error"`
}

// ErrorInfo is an error's code, HTTP status and message.
type ErrorInfo struct {
	Code    int    `json:"code"`
	Status  int    `json:"status"`
	Message string `json:"message"`
}

// StatusOf maps an error's code to its HTTP status.
func StatusOf(err error) int {
	switch aserr.CodeOf(err) {
	case ErrUnauthorized.Code:
		return http.StatusUnauthorized
	case ErrForbidden.Code:
		return http.StatusForbidden
	case ErrTooLarge.Code, resource.ErrTooLarge.Code:
		return http.StatusRequestEntityTooLarge
	case aserr.ErrRevisionPruned.Code:
		return http.StatusGone
	case aserr.ErrNotFound.Code, aserr.ErrResNotFound.Code:
		return http.StatusNotFound
	case aserr.ErrInvalidParam.Code, aserr.ErrBadRequest.Code:
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// writeError writes err as an ErrorBody with its status.
func writeError(w http.ResponseWriter, err error) {
	st := StatusOf(err)
	if st == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="polaris"`)
	}
	msg := err.Error()
	if st == http.StatusInternalServerError {
		msg = aserr.MessageOf(err)
	}
	writeJSON(w, st, ErrorBody{Error: ErrorInfo{Code: aserr.CodeOf(err), Status: st, Message: msg}})
}

// writeJSON writes v as indented JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// decode reads exactly one JSON object into dst, refusing unknown fields.
func decode(r *http.Request, dst any) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("body over %d bytes: %w", mbe.Limit, ErrTooLarge)
		}
		return fmt.Errorf("read body: %w", aserr.ErrBadRequest)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("malformed JSON body: %v: %w", err, aserr.ErrBadRequest)
	}
	if dec.More() {
		return fmt.Errorf("malformed JSON body: trailing data: %w", aserr.ErrBadRequest)
	}
	return nil
}
