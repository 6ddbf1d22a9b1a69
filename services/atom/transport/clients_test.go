package transport

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/callmux"
	"github.com/athenaserving/asf/libs/callmux/muxwire"
	"github.com/athenaserving/asf/libs/grpcx"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/libs/testpoll"
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

// streamingLoader serves OnceStream with its loader's Once, as the loader does, and
// counts the calls that came that way.
type streamingLoader struct {
	loaderpb.LoaderServer
	mux    *muxwire.LoaderServer
	muxed  atomic.Int64
	opened atomic.Int64
}

func newStreamingLoader(t *testing.T, l loaderpb.LoaderServer) *streamingLoader {
	s := &streamingLoader{LoaderServer: l}
	s.mux = callmux.NewServer(func(ctx context.Context, in *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
		s.muxed.Add(1)
		return l.Once(ctx, in)
	}, callmux.ServerWire[loaderpb.LoaderInput, loaderpb.LoaderOutput, loaderpb.OnceCall, loaderpb.OnceReply]{
		ReadCall: func(c *loaderpb.OnceCall) (callmux.CallHeader, *loaderpb.LoaderInput) {
			return callmux.CallHeaderOf(c), c.GetInput()
		},
		NewReply: func(h callmux.ReplyHeader, out *loaderpb.LoaderOutput) *loaderpb.OnceReply {
			return &loaderpb.OnceReply{Id: h.ID, Output: out, GrpcCode: uint32(h.Status), Code: int32(h.Code), Message: h.Message}
		},
	}, callmux.ServerOptions{Workers: 1})
	t.Cleanup(s.mux.Close) // after the server's Stop (cleanups run last first)
	return s
}

func (s *streamingLoader) OnceStream(st loaderpb.Loader_OnceStreamServer) error {
	s.opened.Add(1)
	return s.mux.Serve(st)
}

func TestLoaderErrorsReachTheRouterOneWay(t *testing.T) {
	for _, streams := range []int{0, 2} {
		t.Run(fmt.Sprintf("streams=%d", streams), func(t *testing.T) { testLoaderErrors(t, streams) })
	}
}

func testLoaderErrors(t *testing.T, streams int) {
	pool := grpcx.NewPool()
	t.Cleanup(pool.Close)
	loaders := NewLoaders(pool, LoaderOptions{Streams: streams})
	t.Cleanup(loaders.Close)
	var codes []int
	for _, srv := range []loaderpb.LoaderServer{inBandLoader{}, statusLoader{}} {
		sl := newStreamingLoader(t, srv)
		addr := serveLoader(t, sl)
		l, err := loaders.Loader(addr)
		require.NoError(t, err)
		testpoll.Until(t, 5*time.Second, "the once streams open", func() bool { return loaders.Streams(addr) == streams })
		out, err := l.Once(t.Context(), &loaderpb.LoaderInput{})
		require.Nil(t, out)
		require.Error(t, err)
		codes = append(codes, aserr.CodeOf(err))
		require.EqualValues(t, min(streams, 1), sl.muxed.Load())
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

// blockingLoader holds every once request until its context ends.
type blockingLoader struct {
	loaderpb.UnimplementedLoaderServer
	running atomic.Int64
}

func (b *blockingLoader) Once(ctx context.Context, _ *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
	b.running.Add(1)
	<-ctx.Done()
	return nil, grpcx.ToStatus(ctx.Err())
}

// TestForgetFailsCallsOnStreams: a loader dropped from rotation (Forget) fails the once
// requests in flight on its streams at once with 10222, which the router retries
// elsewhere, as it fails unary ones; the next use dials it again with fresh streams.
func TestForgetFailsCallsOnStreams(t *testing.T) {
	pool := grpcx.NewPool()
	t.Cleanup(pool.Close)
	loaders := NewLoaders(pool, LoaderOptions{Streams: 2})
	t.Cleanup(loaders.Close)
	bl := &blockingLoader{}
	sl := newStreamingLoader(t, bl)
	addr := serveLoader(t, sl)
	l, err := loaders.Loader(addr)
	require.NoError(t, err)
	testpoll.Until(t, 5*time.Second, "two once streams", func() bool { return loaders.Streams(addr) == 2 })
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := l.Once(context.Background(), &loaderpb.LoaderInput{})
			errs <- err
		}()
	}
	testpoll.Until(t, 5*time.Second, "three requests running", func() bool { return bl.running.Load() == 3 })
	require.EqualValues(t, 3, sl.muxed.Load())
	loaders.Forget(addr)
	for range 3 {
		err := <-errs
		require.Equal(t, aserr.ErrNetwork.Code, aserr.CodeOf(err), "%v", err)
	}
	l2, err := loaders.Loader(addr)
	require.NoError(t, err)
	require.NotSame(t, l, l2)
	testpoll.Until(t, 5*time.Second, "two new once streams", func() bool { return loaders.Streams(addr) == 2 && sl.opened.Load() == 4 })
}
