// Package atomgrpc is the gate's atom over gRPC: it adapts atom's generated client to
// gate.Atom, turning gRPC statuses into coded errors.
package atomgrpc

import (
	"context"

	"github.com/athenaserving/asf/libs/grpcx"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate/gate"
)

// New adapts atom's gRPC client to the gate's Atom: gRPC statuses become coded errors
// (grpcx.FromStatus); io.EOF, the end of a stream, passes unchanged.
func New(c atompb.AtomClient) gate.Atom { return atomClient{c} }

type atomClient struct{ c atompb.AtomClient }

func (a atomClient) Call(ctx context.Context, f *atompb.Frame) (*atompb.Result, error) {
	res, err := a.c.Call(ctx, f)
	if err != nil {
		return nil, grpcx.FromStatus(err)
	}
	return res, nil
}

func (a atomClient) Stream(ctx context.Context) (gate.Stream, error) {
	s, err := a.c.Stream(ctx)
	if err != nil {
		return nil, grpcx.FromStatus(err)
	}
	return atomStream{s}, nil
}

type atomStream struct{ s atompb.Atom_StreamClient }

func (a atomStream) Send(f *atompb.Frame) error { return grpcx.FromStatus(a.s.Send(f)) }

func (a atomStream) Recv() (*atompb.Result, error) {
	res, err := a.s.Recv()
	return res, grpcx.FromStatus(err)
}

func (a atomStream) CloseSend() error { return a.s.CloseSend() }
