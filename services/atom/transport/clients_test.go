package transport

import (
	"context"
	"net"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
)

// inBandLoader answers every call with an output whose code is set, and ends sessions
// with one.
type inBandLoader struct {
	loaderpb.UnimplementedLoaderServer
}

func (inBandLoader) Once(context.Context, *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
	return &loaderpb.LoaderOutput{Code: 10110, Err: "licence not enough"}, nil
}

func (inBandLoader) Session(st grpc.BidiStreamingServer[loaderpb.LoaderInput, loaderpb.LoaderOutput]) error {
	if _, err := st.Recv(); err != nil {
		return err
	}
	return st.Send(&loaderpb.LoaderOutput{Code: 10101, Err: "engine failed"})
}

// statusLoader reports its errors as gRPC status, as the loader does.
type statusLoader struct {
	loaderpb.UnimplementedLoaderServer
}

func (statusLoader) Once(context.Context, *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
	return nil, grpcx.ToStatus(aserr.Received(10110, "licence not enough"))
}

func serveLoader(t *testing.T, srv loaderpb.LoaderServer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := grpc.NewServer()
	loaderpb.RegisterLoaderServer(s, srv)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

func TestLoaderErrorsReachTheRouterOneWay(t *testing.T) {
	pool := grpcx.NewPool()
	t.Cleanup(pool.Close)
	loaders := NewLoaders(pool)
	var codes []int
	for _, srv := range []loaderpb.LoaderServer{inBandLoader{}, statusLoader{}} {
		l, err := loaders.Loader(serveLoader(t, srv))
		require.NoError(t, err)
		out, err := l.Once(t.Context(), &loaderpb.LoaderInput{})
		require.Nil(t, out)
		require.Error(t, err)
		codes = append(codes, aserr.CodeOf(err))
	}
	require.Equal(t, []int{10110, 10110}, codes, "in-band code and status give the same coded error")

	l, err := loaders.Loader(serveLoader(t, inBandLoader{}))
	require.NoError(t, err)
	sess, err := l.Session(t.Context())
	require.NoError(t, err)
	require.NoError(t, sess.Send(&loaderpb.LoaderInput{}))
	out, err := sess.Recv()
	require.Nil(t, out)
	require.Equal(t, 10101, aserr.CodeOf(err))
}
