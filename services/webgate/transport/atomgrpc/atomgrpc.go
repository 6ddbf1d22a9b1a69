// Package atomgrpc is the gate's atom over gRPC: it adapts atom's generated client to
// gate.Atom, turning gRPC statuses into coded errors, and Mux sends once calls on a few
// long-lived streams.
package atomgrpc

import (
	"context"

	"github.com/athenaserving/asf/libs/callmux"
	"github.com/athenaserving/asf/libs/callmux/muxwire"
	"github.com/athenaserving/asf/libs/grpcx"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate/gate"
	"google.golang.org/grpc"
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

// Mux is atom's client whose once calls travel on a few long-lived Atom.CallStreams
// (libs/callmux), over unary Atom.Call while none is open; sessions stay one Atom.Stream
// each. Over a round-robin connection to several atoms, each stream goes to the next atom
// and the streams retire and reopen every few seconds, so they spread again over atoms
// that came back or were added. Close stops its streams.
type Mux struct {
	atompb.AtomClient // Stream, and Call's unary fallback
	mux               *muxwire.AtomClient
}

// NewMux returns the client of c whose once calls go on opts.Streams CallStreams (0: all
// unary).
func NewMux(c atompb.AtomClient, opts callmux.Options) *Mux {
	return &Mux{AtomClient: c, mux: muxwire.NewAtomClient(c, opts)}
}

// Call sends a once request on a CallStream and returns what unary Call would: its
// result or its status error. Call options do not apply to a call on a stream.
func (m *Mux) Call(ctx context.Context, f *atompb.Frame, _ ...grpc.CallOption) (*atompb.Result, error) {
	return m.mux.Call(ctx, f)
}

// Open is how many CallStreams take calls now.
func (m *Mux) Open() int { return m.mux.Open() }

// Close stops the streams; once calls still on them fail as on a closed connection.
func (m *Mux) Close() error { return m.mux.Close() }
