package atomgrpc

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/callmux"
	"github.com/athenaserving/asf/libs/callmux/muxwire"
	"github.com/athenaserving/asf/libs/grpcx"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fakeClient answers every call and stream with the errors it holds.
type fakeClient struct {
	atompb.AtomClient                  // CallStream: not used
	callErr, openErr, sendErr, recvErr error
}

func (f fakeClient) Call(context.Context, *atompb.Frame, ...grpc.CallOption) (*atompb.Result, error) {
	if f.callErr != nil {
		return nil, f.callErr
	}
	return &atompb.Result{Sid: "s"}, nil
}

func (f fakeClient) Stream(context.Context, ...grpc.CallOption) (grpc.BidiStreamingClient[atompb.Frame, atompb.Result], error) {
	if f.openErr != nil {
		return nil, f.openErr
	}
	return fakeStream{f: f}, nil
}

type fakeStream struct {
	grpc.BidiStreamingClient[atompb.Frame, atompb.Result]
	f fakeClient
}

func (s fakeStream) Send(*atompb.Frame) error      { return s.f.sendErr }
func (s fakeStream) Recv() (*atompb.Result, error) { return nil, s.f.recvErr }
func (s fakeStream) CloseSend() error              { return nil }

// TestStatusesBecomeCodes: every error from atom's client reaches the gate as a coded
// error (the code of a status that carries one, else the code of its gRPC code); the end
// of a stream stays io.EOF.
func TestStatusesBecomeCodes(t *testing.T) {
	licence := grpcx.ToStatus(aserr.New(10110, "licence not enough"))
	a := New(fakeClient{callErr: licence, openErr: status.Error(codes.Unavailable, "down")})
	_, err := a.Call(context.Background(), &atompb.Frame{})
	assert.Equal(t, 10110, aserr.CodeOf(err))
	_, err = a.Stream(context.Background())
	assert.Equal(t, aserr.ErrNetwork.Code, aserr.CodeOf(err))

	res, err := New(fakeClient{}).Call(context.Background(), &atompb.Frame{})
	require.NoError(t, err)
	assert.Equal(t, "s", res.GetSid())

	s, err := New(fakeClient{sendErr: io.EOF, recvErr: status.Error(codes.DeadlineExceeded, "late")}).Stream(context.Background())
	require.NoError(t, err)
	assert.ErrorIs(t, s.Send(&atompb.Frame{}), io.EOF)
	_, err = s.Recv()
	assert.Equal(t, aserr.ErrOnceTimeout.Code, aserr.CodeOf(err))
	require.NoError(t, s.CloseSend())

	s, err = New(fakeClient{recvErr: io.EOF}).Stream(context.Background())
	require.NoError(t, err)
	_, err = s.Recv()
	assert.ErrorIs(t, err, io.EOF)
}

// fakeAtom answers Call with the frame's sid, over the unary RPC and on CallStreams,
// and counts each way.
type fakeAtom struct {
	atompb.UnimplementedAtomServer
	mux          *muxwire.AtomServer
	unary, muxed atomic.Int64
}

func (a *fakeAtom) Call(_ context.Context, f *atompb.Frame) (*atompb.Result, error) {
	a.unary.Add(1)
	return &atompb.Result{Sid: f.GetSid()}, nil
}

func (a *fakeAtom) CallStream(st atompb.Atom_CallStreamServer) error { return a.mux.Serve(st) }

// TestMuxSendsCallsOnStreams: the gate's atom over Mux sends once calls on CallStreams
// (unary with none configured), with the same results.
func TestMuxSendsCallsOnStreams(t *testing.T) {
	a := &fakeAtom{}
	a.mux = muxwire.NewAtomServer(func(ctx context.Context, f *atompb.Frame) (*atompb.Result, error) {
		a.muxed.Add(1)
		return &atompb.Result{Sid: f.GetSid()}, nil
	}, callmux.ServerOptions{Workers: 1})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := grpc.NewServer()
	atompb.RegisterAtomServer(s, a)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { s.Stop(); a.mux.Close() })
	cc, err := grpcx.Dial(ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })

	for _, streams := range []int{1, 0} {
		m := NewMux(atompb.NewAtomClient(cc), callmux.Options{Streams: streams})
		testpoll.Until(t, 5*time.Second, "the call stream open", func() bool { return m.Open() == streams })
		res, err := New(m).Call(t.Context(), &atompb.Frame{Sid: "s1"})
		require.NoError(t, err)
		assert.Equal(t, "s1", res.GetSid())
		require.NoError(t, m.Close())
	}
	assert.EqualValues(t, 1, a.muxed.Load())
	assert.EqualValues(t, 1, a.unary.Load())
}
