package grpcx

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestStatusRoundTrip(t *testing.T) {
	err := ToStatus(fmt.Errorf("create: %w", aserr.ErrLicenceFull))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("grpc code = %v", status.Code(err))
	}
	back := FromStatus(err)
	if aserr.CodeOf(back) != 10110 || !errors.Is(back, aserr.ErrLicenceFull) {
		t.Fatalf("round trip lost the code: %v", back)
	}
	if aserr.MessageOf(back) != "create: licence not enough" {
		t.Fatalf("message = %q: the sender's reason is kept", aserr.MessageOf(back))
	}
	if m := aserr.MessageOf(fmt.Errorf("loader 10.0.0.1:9000: %w", back)); m != "create: licence not enough" {
		t.Fatalf("message = %q: the receiver's context is left out", m)
	}
}

func TestStatusEngineCode(t *testing.T) {
	back := FromStatus(ToStatus(aserr.New(30003, "user exec error")))
	if aserr.CodeOf(back) != 30003 {
		t.Fatalf("engine code lost: %v", back)
	}
}

func TestStatusContext(t *testing.T) {
	if status.Code(ToStatus(context.Canceled)) != codes.Canceled {
		t.Fatal("canceled not kept")
	}
	if !errors.Is(FromStatus(status.Error(codes.Canceled, "x")), context.Canceled) {
		t.Fatal("canceled not restored")
	}
	if aserr.CodeOf(FromStatus(status.Error(codes.Unavailable, "down"))) != 10222 {
		t.Fatal("unavailable should map to 10222")
	}
}

func TestStatusAuthCodes(t *testing.T) {
	for _, c := range []struct {
		err  *aserr.Error
		want codes.Code
	}{{aserr.ErrUnauthenticated, codes.Unauthenticated}, {aserr.ErrForbidden, codes.PermissionDenied}} {
		err := ToStatus(fmt.Errorf("push: %w", c.err))
		if status.Code(err) != c.want {
			t.Fatalf("%d: grpc code = %v, want %v", c.err.Code, status.Code(err), c.want)
		}
		if aserr.CodeOf(FromStatus(err)) != c.err.Code {
			t.Fatalf("%d: code lost in the details", c.err.Code)
		}
	}
}
