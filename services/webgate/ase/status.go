package ase

import "github.com/athenaserving/asf/libs/aserr"

// Plain HTTP status numbers, so this package needs no net/http.
const (
	httpOK         = 200
	httpBadRequest = 400
	httpNotFound   = 404
	httpBadGateway = 502
)

// httpStatusByCode maps ASE codes to the HTTP status of a once response
// (specs/ase-protocol.md §6); codes not listed are engine or upstream errors → 502.
var httpStatusByCode = map[int]int{
	0:                        httpOK,
	aserr.ErrBadRequest.Code: httpBadRequest,
	aserr.ErrAppID.Code:      httpBadRequest,
	aserr.ErrNotFound.Code:   httpNotFound,
}

// HTTPStatus returns the HTTP status of a once response carrying ASE code.
// A per-capability codeMap, when schemas exist, is consulted before this table.
func HTTPStatus(code int) int {
	if s, ok := httpStatusByCode[code]; ok {
		return s
	}
	return httpBadGateway
}
