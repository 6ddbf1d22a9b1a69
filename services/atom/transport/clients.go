// Package transport adapts atom to gRPC: the Atom service (Call, Stream) over the router,
// and the gRPC client of the loaders that the router uses (lbclient's is libs/lbpick).
package transport

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/services/atom/route"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Loaders reaches loaders over gRPC through a connection pool keyed by address.
type Loaders struct{ pool *grpcx.Pool }

// NewLoaders returns Loaders dialling through pool.
func NewLoaders(pool *grpcx.Pool) *Loaders { return &Loaders{pool: pool} }

// Loader returns the loader at addr.
func (l *Loaders) Loader(addr string) (route.Loader, error) {
	cc, err := l.pool.Get(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", aserr.ErrNetwork, err)
	}
	return loaderConn{c: loaderpb.NewLoaderClient(cc)}, nil
}

type loaderConn struct{ c loaderpb.LoaderClient }

func (l loaderConn) Once(ctx context.Context, in *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
	out, err := l.c.Once(ctx, in)
	if err != nil {
		return nil, loaderErr(ctx, err)
	}
	if err := outputErr(out); err != nil {
		return nil, err
	}
	return out, nil
}

// outputErr is the error a loader output carries in band (code != 0). The loader reports
// every error as a gRPC status with the code in its details (docs/contracts.md, "One
// channel per error"); an output with a code is turned into the same coded error here, so
// the router sees a loader's errors one way whichever way they came.
func outputErr(out *loaderpb.LoaderOutput) error {
	if out.GetCode() == 0 {
		return nil
	}
	return fmt.Errorf("loader output: %w", aserr.Received(int(out.GetCode()), out.GetErr()))
}

// Public forms of the network error 10222 for a loader that cannot be reached or went
// away: the transport detail (addresses, dial errors) is wrapped around them for the log
// and left out of the message that travels on (aserr.MessageOf).
var (
	errLoaderUnreachable = aserr.Received(aserr.ErrNetwork.Code, "engine node unreachable")
	errLoaderGone        = aserr.Received(aserr.ErrNetwork.Code, "engine node went away")
)

// loaderErr converts a loader call's gRPC error. A cancellation that is not ours (our ctx
// is live) is the loader or its connection resetting the stream — a dying loader — and is
// reported as the network error 10222, which the router may retry elsewhere; so is an
// Unavailable status that carries no code of the loader's (the connection failed).
func loaderErr(ctx context.Context, err error) error {
	st := status.Convert(err)
	switch {
	case st.Code() == codes.Canceled && ctx.Err() == nil:
		return fmt.Errorf("loader reset the call: %s: %w", st.Message(), errLoaderGone)
	case st.Code() == codes.Unavailable && !carriesCode(st):
		return fmt.Errorf("loader call: %s: %w", st.Message(), errLoaderUnreachable)
	}
	return grpcx.FromStatus(err)
}

// carriesCode tells whether st holds an ASE code set by the loader.
func carriesCode(st *status.Status) bool {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == "asf" {
			return true
		}
	}
	return false
}

func (l loaderConn) Session(ctx context.Context) (route.Session, error) {
	st, err := l.c.Session(ctx)
	if err != nil {
		return nil, loaderErr(ctx, err)
	}
	return loaderSession{st: st, ctx: ctx}, nil
}

type loaderSession struct {
	st  grpc.BidiStreamingClient[loaderpb.LoaderInput, loaderpb.LoaderOutput]
	ctx context.Context // the session's context: tells our cancellations from the loader's
}

func (s loaderSession) Send(in *loaderpb.LoaderInput) error {
	if err := s.st.Send(in); err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		return loaderErr(s.ctx, err)
	}
	return nil
}

func (s loaderSession) CloseSend() error { return s.st.CloseSend() }

func (s loaderSession) Recv() (*loaderpb.LoaderOutput, error) {
	out, err := s.st.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, loaderErr(s.ctx, err)
	}
	if err := outputErr(out); err != nil {
		return nil, err
	}
	return out, nil
}
