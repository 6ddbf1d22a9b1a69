// Package grpcx holds what every service needs around gRPC: converting coded errors
// to and from gRPC status, the server interceptor chain, and dialing.
package grpcx

import (
	"context"
	"errors"
	"strconv"

	"github.com/athenaserving/asf/libs/aserr"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const errDomain = "asf"

// ToStatus turns err into a gRPC status error whose details carry the ASE/AIGES code.
// context errors map to Canceled/DeadlineExceeded and keep their meaning.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok && !isCoded(err) {
		return err
	}
	code := aserr.CodeOf(err)
	gc := codes.Unknown
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		gc = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		gc = codes.Canceled
	case code == aserr.ErrLicenceFull.Code:
		gc = codes.ResourceExhausted
	case code == aserr.ErrNotFound.Code:
		gc = codes.NotFound
	case code == aserr.ErrNoEngine.Code, code == aserr.ErrNetwork.Code, code == aserr.ErrReleased.Code:
		gc = codes.Unavailable
	case code == aserr.ErrBadRequest.Code, code == aserr.ErrInvalidParam.Code, code == aserr.ErrInvalidData.Code:
		gc = codes.InvalidArgument
	case code == aserr.ErrUnauthenticated.Code:
		gc = codes.Unauthenticated
	case code == aserr.ErrForbidden.Code:
		gc = codes.PermissionDenied
	}
	st := status.New(gc, aserr.MessageOf(err))
	if d, derr := st.WithDetails(&errdetails.ErrorInfo{
		Domain:   errDomain,
		Reason:   "ASE_" + strconv.Itoa(code),
		Metadata: map[string]string{"code": strconv.Itoa(code)},
	}); derr == nil {
		st = d
	}
	return st.Err()
}

func isCoded(err error) bool {
	var e *aserr.Error
	return errors.As(err, &e)
}

// FromStatus turns a gRPC error back into an *aserr.Error when it carries a code.
// Status errors without one map by gRPC code: Unavailable → 10222, DeadlineExceeded →
// 10102, Canceled → context.Canceled, everything else → 11502.
func FromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == errDomain {
			if c, cerr := strconv.Atoi(info.GetMetadata()["code"]); cerr == nil {
				return aserr.Received(c, st.Message()) // the message already holds the sender's reasons
			}
		}
	}
	switch st.Code() {
	case codes.Canceled:
		return context.Canceled
	case codes.DeadlineExceeded:
		return aserr.Received(aserr.ErrOnceTimeout.Code, st.Message())
	case codes.Unavailable:
		return aserr.Received(aserr.ErrNetwork.Code, st.Message())
	}
	return aserr.Received(aserr.ErrInternal.Code, st.Message())
}
