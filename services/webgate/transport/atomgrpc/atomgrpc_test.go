package atomgrpc

import (
	"context"
	"io"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
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
