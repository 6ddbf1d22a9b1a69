package callmux_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/callmux"
	"github.com/athenaserving/asf/libs/callmux/muxwire"
	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/lifecycle"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/libs/rawstream"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/libs/tracing"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type (
	in  = loaderpb.LoaderInput
	out = loaderpb.LoaderOutput
)

// echo answers with the input's service id and payload.
func echo(_ context.Context, req *in) (*out, error) {
	return &out{ServiceId: req.GetServiceId(), Pl: req.GetPl()}, nil
}

// fakeLoader serves Once and OnceStream with the same handler and counts how calls came
// and how often each service id ran.
type fakeLoader struct {
	loaderpb.UnimplementedLoaderServer
	handle        callmux.Handler[in, out]
	mux           *muxwire.LoaderServer
	unary, muxed  atomic.Int64
	streamsServed atomic.Int64
	mu            sync.Mutex
	runs          map[string]int
}

func (f *fakeLoader) count(req *in) {
	f.mu.Lock()
	f.runs[req.GetServiceId()]++
	f.mu.Unlock()
}

func (f *fakeLoader) Once(ctx context.Context, req *in) (*out, error) {
	f.unary.Add(1)
	f.count(req)
	return f.handle(ctx, req)
}

func (f *fakeLoader) OnceStream(st loaderpb.Loader_OnceStreamServer) error {
	f.streamsServed.Add(1)
	return f.mux.Serve(st)
}

// registerOld registers f as a Loader built before OnceStream: the service without it.
func registerOld(s *grpc.Server, f *fakeLoader) {
	desc := loaderpb.Loader_ServiceDesc
	desc.Streams = nil
	for _, sd := range loaderpb.Loader_ServiceDesc.Streams {
		if sd.StreamName != "OnceStream" {
			desc.Streams = append(desc.Streams, sd)
		}
	}
	s.RegisterService(&desc, f)
}

type server struct {
	t      testing.TB
	srv    *grpcx.Server
	f      *fakeLoader
	mux    *muxwire.LoaderServer
	reg    *prometheus.Registry
	addr   string
	served chan struct{}
	split  *rawstream.Listener // withRaw
}

type serverOpt func(*serverConfig)

type serverConfig struct {
	old  bool
	raw  bool
	tp   *tracing.Provider
	opts []grpc.ServerOption
}

func withoutStream() serverOpt { return func(c *serverConfig) { c.old = true } }

// withRaw serves OnceStream as raw streams too, on the same port (libs/rawstream).
func withRaw() serverOpt { return func(c *serverConfig) { c.raw = true } }

func withTracing(tp *tracing.Provider) serverOpt {
	return func(c *serverConfig) { c.tp, c.opts = tp, append(c.opts, grpcx.TraceServer(tp)...) }
}

// serve starts a Loader server (the project's interceptor chain) on 127.0.0.1:0.
func serve(t testing.TB, handle callmux.Handler[in, out], opts ...serverOpt) *server {
	t.Helper()
	var cfg serverConfig
	for _, o := range opts {
		o(&cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &server{t: t, reg: prometheus.NewRegistry(), addr: ln.Addr().String(), served: make(chan struct{})}
	s.srv = grpcx.NewServer("test", zerolog.Nop(), s.reg, cfg.opts...)
	s.f = &fakeLoader{handle: handle, runs: map[string]int{}}
	s.mux = muxwire.NewLoaderServer(func(ctx context.Context, req *in) (*out, error) {
		s.f.muxed.Add(1)
		s.f.count(req)
		return handle(ctx, req)
	}, callmux.ServerOptions{Recorder: grpcx.NewCallRecorder("test", zerolog.Nop(), s.reg, cfg.tp), Workers: 4})
	s.f.mux = s.mux
	if cfg.old {
		registerOld(s.srv.Server, s.f)
	} else {
		loaderpb.RegisterLoaderServer(s.srv.Server, s.f)
	}
	if cfg.raw {
		s.split = rawstream.Listen(ln, rawstream.ListenOptions{})
		s.split.Handle(loaderpb.Loader_OnceStream_FullMethodName, nil, func(c *rawstream.Conn) error {
			s.f.streamsServed.Add(1)
			return s.mux.Serve(rawstream.ServerStream[loaderpb.OnceCall, loaderpb.OnceReply](c))
		})
		ln = s.split.GRPC()
	}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(ln)
	}()
	t.Cleanup(s.stop)
	return s
}

// stop stops the server at once (calls in flight break) and its mux's workers.
func (s *server) stop() {
	s.srv.Stop()
	<-s.served
	if s.split != nil {
		s.split.Stop()
	}
	s.mux.Close()
}

// client dials addrs (a round-robin connection over them) and returns a callmux client
// of Loader.Once and the plain generated client.
func client(t testing.TB, opts callmux.Options, dial []grpc.DialOption, addrs ...string) (*muxwire.LoaderClient, loaderpb.LoaderClient) {
	t.Helper()
	cc, err := grpcx.DialList(addrs, dial...)
	require.NoError(t, err)
	lc := loaderpb.NewLoaderClient(cc)
	m := muxwire.NewLoaderClient(lc, opts)
	t.Cleanup(func() {
		require.NoError(t, m.Close())
		_ = cc.Close()
	})
	return m, lc
}

func input(id string) *in {
	return &in{ServiceId: id, Pl: []*loaderpb.Payload{{Meta: &loaderpb.MetaDesc{Name: "text"}, Data: []byte("hello")}}}
}

func waitOpen(t *testing.T, m *muxwire.LoaderClient, n int) {
	t.Helper()
	testpoll.Until(t, 5*time.Second, fmt.Sprintf("%d open streams", n), func() bool { return m.Open() == n })
}

func TestCallsTravelOnStreams(t *testing.T) {
	s := serve(t, echo)
	m, _ := client(t, callmux.Options{Streams: 2}, nil, s.addr)
	waitOpen(t, m, 2)
	for i := range 20 {
		resp, err := m.Call(t.Context(), input(strconv.Itoa(i)))
		require.NoError(t, err)
		require.Equal(t, strconv.Itoa(i), resp.GetServiceId())
		require.Equal(t, []byte("hello"), resp.GetPl()[0].GetData())
	}
	require.EqualValues(t, 20, s.f.muxed.Load())
	require.Zero(t, s.f.unary.Load())
	// Each call counts under the unary method, as a unary call would.
	require.Equal(t, 20.0, callsTotal(s.reg, loaderpb.Loader_Once_FullMethodName, "0"))
}

func TestLargeCallsAndNoStreamsGoUnary(t *testing.T) {
	s := serve(t, echo)
	m, _ := client(t, callmux.Options{Streams: 1, MaxCallBytes: 4}, nil, s.addr)
	waitOpen(t, m, 1)
	_, err := m.Call(t.Context(), input("big")) // 5 payload bytes
	require.NoError(t, err)
	require.EqualValues(t, 1, s.f.unary.Load())

	u, _ := client(t, callmux.Options{Streams: 0}, nil, s.addr)
	_, err = u.Call(t.Context(), input("unary"))
	require.NoError(t, err)
	require.EqualValues(t, 2, s.f.unary.Load())
	require.Zero(t, s.f.muxed.Load())
}

// TestErrorsAreTheUnaryOnes: a handler's error reaches the caller as the very status the
// unary call returns (code, message, the ASE code in its details); a panic becomes the
// same 11502 status on both ways and is counted the same (not at all: recovery sits
// outside the metrics in the chain).
func TestErrorsAreTheUnaryOnes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		code    int
		counted float64
	}{
		{"licence full", grpcx.ToStatus(fmt.Errorf("slots busy: %w", aserr.ErrLicenceFull)), aserr.ErrLicenceFull.Code, 2},
		{"plain status", status.Error(codes.Unavailable, "going away"), aserr.ErrNetwork.Code, 2},
		{"uncoded error", errors.New("something odd"), aserr.ErrInternal.Code, 2},
		{"panic", nil, aserr.ErrInternal.Code, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := serve(t, func(context.Context, *in) (*out, error) {
				if tc.err == nil {
					panic("handler bug")
				}
				return nil, tc.err
			})
			m, lc := client(t, callmux.Options{Streams: 1}, nil, s.addr)
			waitOpen(t, m, 1)
			_, uerr := lc.Once(t.Context(), input("u"))
			_, merr := m.Call(t.Context(), input("m"))
			require.Error(t, merr)
			require.EqualValues(t, 1, s.f.muxed.Load())
			require.True(t, proto.Equal(status.Convert(uerr).Proto(), status.Convert(merr).Proto()), "unary %v, muxed %v", uerr, merr)
			require.Equal(t, tc.code, aserr.CodeOf(grpcx.FromStatus(merr)))
			code := strconv.Itoa(aserr.CodeOf(grpcx.FromStatus(uerr)))
			require.Equal(t, tc.counted, callsTotal(s.reg, loaderpb.Loader_Once_FullMethodName, code))
		})
	}
}

// callsTotal is asf_test_grpc_calls_total{method,code} in reg (found by registering
// it again).
func callsTotal(reg prometheus.Registerer, method, code string) float64 {
	err := reg.Register(prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "asf_test_grpc_calls_total", Help: "gRPC calls served, by method and ASE code.",
	}, []string{"method", "code"}))
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) {
		return -1
	}
	return testutil.ToFloat64(are.ExistingCollector.(*prometheus.CounterVec).WithLabelValues(method, code))
}

// TestCancelReachesTheServer: a caller that gives up gets Canceled at once and the
// server's call context is cancelled.
func TestCancelReachesTheServer(t *testing.T) {
	started := make(chan struct{}, 1)
	var serverErr atomic.Value
	s := serve(t, func(ctx context.Context, req *in) (*out, error) {
		if req.GetServiceId() != "c" {
			return echo(ctx, req)
		}
		started <- struct{}{}
		<-ctx.Done()
		serverErr.Store(ctx.Err())
		return nil, grpcx.ToStatus(ctx.Err())
	})
	m, _ := client(t, callmux.Options{Streams: 1}, nil, s.addr)
	waitOpen(t, m, 1)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := m.Call(ctx, input("c"))
		errc <- err
	}()
	<-started
	cancel()
	err := <-errc
	require.Equal(t, codes.Canceled, status.Code(err))
	testpoll.Until(t, 5*time.Second, "the server's call cancelled", func() bool { return serverErr.Load() != nil })
	require.ErrorIs(t, serverErr.Load().(error), context.Canceled)
	// The stream goes on serving.
	resp, err := m.Call(t.Context(), input("after"))
	require.NoError(t, err)
	require.Equal(t, "after", resp.GetServiceId())
	require.EqualValues(t, 2, s.f.muxed.Load())
}

// TestDeadlineTravels: the caller's deadline bounds the server's call; the caller gets
// DeadlineExceeded when it passes, as a unary call does.
func TestDeadlineTravels(t *testing.T) {
	var left atomic.Int64
	s := serve(t, func(ctx context.Context, _ *in) (*out, error) {
		dl, ok := ctx.Deadline()
		if !ok {
			return nil, status.Error(codes.FailedPrecondition, "no deadline")
		}
		left.Store(int64(time.Until(dl)))
		<-ctx.Done()
		return nil, grpcx.ToStatus(ctx.Err())
	})
	m, lc := client(t, callmux.Options{Streams: 1}, nil, s.addr)
	waitOpen(t, m, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := m.Call(ctx, input("d"))
	require.Equal(t, codes.DeadlineExceeded, status.Code(err))
	require.Positive(t, left.Load())
	require.LessOrEqual(t, left.Load(), int64(200*time.Millisecond))
	uctx, ucancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer ucancel()
	_, uerr := lc.Once(uctx, input("u"))
	require.Equal(t, status.Code(uerr), status.Code(err))
}

// TestBrokenStreamFailsLikeUnary: a server that stops mid-call fails the calls on its
// streams with the status a unary call in flight gets, which callers map to 10222.
func TestBrokenStreamFailsLikeUnary(t *testing.T) {
	var running atomic.Int64
	release := make(chan struct{})
	s := serve(t, func(ctx context.Context, req *in) (*out, error) {
		running.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return echo(ctx, req)
	})
	defer close(release)
	m, lc := client(t, callmux.Options{Streams: 2}, nil, s.addr)
	waitOpen(t, m, 2)
	errs := make(chan error, 5)
	for i := range 4 {
		go func() {
			_, err := m.Call(context.Background(), input(strconv.Itoa(i)))
			errs <- err
		}()
	}
	go func() {
		_, err := lc.Once(context.Background(), input("unary"))
		errs <- err
	}()
	testpoll.Until(t, 5*time.Second, "5 calls running", func() bool { return running.Load() == 5 })
	s.stop()
	var got []codes.Code
	for range 5 {
		err := <-errs
		require.Error(t, err)
		require.Equal(t, aserr.ErrNetwork.Code, aserr.CodeOf(grpcx.FromStatus(err)), "%v", err)
		got = append(got, status.Code(err))
	}
	for _, c := range got {
		require.Equal(t, codes.Unavailable, c)
	}
}

// TestOldServerMeansUnary: against a server without the stream RPC every call goes over
// the unary RPC and no stream is kept open.
func TestOldServerMeansUnary(t *testing.T) {
	s := serve(t, echo, withoutStream())
	var told atomic.Bool
	log := zerolog.New(io.Discard).Hook(zerolog.HookFunc(func(_ *zerolog.Event, _ zerolog.Level, msg string) {
		if strings.Contains(msg, "server has no call stream") {
			told.Store(true)
		}
	}))
	m, _ := client(t, callmux.Options{Streams: 2, Log: log}, nil, s.addr)
	testpoll.Until(t, 5*time.Second, "the client told the server has no stream", told.Load)
	for i := range 10 {
		resp, err := m.Call(t.Context(), input(strconv.Itoa(i)))
		require.NoError(t, err)
		require.Equal(t, strconv.Itoa(i), resp.GetServiceId())
	}
	require.Zero(t, m.Open())
	require.EqualValues(t, 10, s.f.unary.Load())
	require.Zero(t, s.f.muxed.Load())
}

// TestDrainLosesNoCall: a server shutting down gracefully with calls in flight and calls
// still coming finishes the ones it runs, sends the others elsewhere, runs none twice, and
// its graceful stop is not held up by the long-lived streams.
func TestDrainLosesNoCall(t *testing.T) {
	for _, raw := range []bool{false, true} {
		t.Run(map[bool]string{false: "grpc", true: "raw"}[raw], func(t *testing.T) { drainLosesNoCall(t, raw) })
	}
}

func drainLosesNoCall(t *testing.T, raw bool) {
	var so []serverOpt
	var direct func(addrs ...string) *rawstream.Dialer
	if raw {
		so = append(so, withRaw())
		direct = func(addrs ...string) *rawstream.Dialer { return &rawstream.Dialer{Target: strings.Join(addrs, ",")} }
	}
	release := make(chan struct{})
	var held atomic.Int64
	a := serve(t, func(ctx context.Context, req *in) (*out, error) {
		if strings.HasPrefix(req.GetServiceId(), "spread") {
			return echo(ctx, req)
		}
		held.Add(1)
		<-release
		return echo(ctx, req)
	}, so...)
	b := serve(t, echo, so...)
	// Streams opened before both connections are up all go to one server: a short age
	// spreads them, while calls keep them in use (an unused stream is not opened again).
	opts := callmux.Options{Streams: 4, MaxAge: 100 * time.Millisecond}
	if raw {
		opts.Direct = direct(a.addr, b.addr)
	}
	m, _ := client(t, opts, nil, a.addr, b.addr)
	waitOpen(t, m, 4)
	spread := 0
	testpoll.Until(t, 5*time.Second, "streams on both servers", func() bool {
		for range 4 {
			spread++
			_, err := m.Call(t.Context(), input("spread-"+strconv.Itoa(spread)))
			require.NoError(t, err)
		}
		return a.mux.Streams() > 0 && b.mux.Streams() > 0
	})

	var wg sync.WaitGroup
	var failed atomic.Int64
	call := func(id string) {
		defer wg.Done()
		if _, err := m.Call(context.Background(), input(id)); err != nil {
			failed.Add(1)
			t.Logf("call %s: %v", id, err)
		}
	}
	n := 0
	for held.Load() < 3 { // calls until three are held by a
		wg.Add(1)
		go call(strconv.Itoa(n))
		n++
		testpoll.Until(t, 5*time.Second, "call "+strconv.Itoa(n-1)+" answered or held", func() bool {
			return int(held.Load()+b.f.muxed.Load()+b.f.unary.Load()) >= n
		})
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		lifecycle.StopWithin(context.Background(), a.srv, a.mux.Drain)
		if a.split != nil {
			a.split.Shutdown(context.Background())
		}
	}()
	testpoll.Until(t, 5*time.Second, "a's streams drained", func() bool { return m.Open() < 4 || a.mux.Streams() == 0 })
	for range 50 { // more calls while a drains: they go to b
		wg.Add(1)
		go call(strconv.Itoa(n))
		n++
	}
	close(release)
	wg.Wait()
	testpoll.Until(t, 5*time.Second, "a's graceful stop done", func() bool {
		select {
		case <-stopped:
			return true
		default:
			return false
		}
	})
	require.Zero(t, failed.Load())
	for i := range n {
		id := strconv.Itoa(i)
		a.f.mu.Lock()
		b.f.mu.Lock()
		runs := a.f.runs[id] + b.f.runs[id]
		b.f.mu.Unlock()
		a.f.mu.Unlock()
		require.Equal(t, 1, runs, "call %s ran %d times", id, runs)
	}
}

// TestDrainAnswersLateCallsNotRun drives the protocol by hand: after a drain the server
// says so, answers a call sent later "not run" without running it, answers the call it was
// running, and then ends the stream cleanly.
func TestDrainAnswersLateCallsNotRun(t *testing.T) {
	release := make(chan struct{})
	var ran atomic.Int64
	s := serve(t, func(ctx context.Context, req *in) (*out, error) {
		ran.Add(1)
		<-release
		return echo(ctx, req)
	})
	_, lc := client(t, callmux.Options{}, nil, s.addr)
	st, err := lc.OnceStream(t.Context())
	require.NoError(t, err)
	require.NoError(t, st.Send(&loaderpb.OnceCall{Id: 1, Input: input("first")}))
	testpoll.Until(t, 5*time.Second, "the first call running", func() bool { return ran.Load() == 1 })
	s.mux.Drain()
	r, err := st.Recv()
	require.NoError(t, err)
	require.True(t, r.GetDrain())
	require.Zero(t, r.GetId())
	require.NoError(t, st.Send(&loaderpb.OnceCall{Id: 2, Input: input("late")}))
	r, err = st.Recv()
	require.NoError(t, err)
	require.EqualValues(t, 2, r.GetId())
	require.True(t, r.GetNotRun())
	close(release)
	r, err = st.Recv()
	require.NoError(t, err)
	require.EqualValues(t, 1, r.GetId())
	require.Equal(t, "first", r.GetOutput().GetServiceId())
	_, err = st.Recv()
	require.ErrorIs(t, err, io.EOF)
	require.EqualValues(t, 1, ran.Load())
}

// TestMaxAgeRetiresUnderLoad: streams retire and reopen while calls keep coming; every
// call is answered once.
func TestMaxAgeRetiresUnderLoad(t *testing.T) {
	s := serve(t, echo)
	m, _ := client(t, callmux.Options{Streams: 2, MaxAge: 30 * time.Millisecond}, nil, s.addr)
	waitOpen(t, m, 2)
	var wg sync.WaitGroup
	var calls, failed atomic.Int64
	stop := make(chan struct{})
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("%d-%d", g, i)
				resp, err := m.Call(context.Background(), input(id))
				calls.Add(1)
				if err != nil || resp.GetServiceId() != id {
					failed.Add(1)
				}
			}
		})
	}
	testpoll.Until(t, 10*time.Second, "ten streams served", func() bool { return s.f.streamsServed.Load() >= 10 })
	close(stop)
	wg.Wait()
	require.Zero(t, failed.Load())
	require.Positive(t, s.f.muxed.Load())
	require.Equal(t, calls.Load(), s.f.muxed.Load()+s.f.unary.Load())
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	for id, n := range s.f.runs {
		require.Equal(t, 1, n, "call %s", id)
	}
}

// TestSpansAreTheUnaryOnes: a sampled call gets a client and a server span named after
// the unary method, the server's a child of the client's; an unsampled call gets none,
// but the server's call still knows its trace id (its log lines name it).
func TestSpansAreTheUnaryOnes(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	srvTP, err := tracing.New(tracing.Config{}, "server", tracing.Options{Exporter: exp})
	require.NoError(t, err)
	cliTP, err := tracing.New(tracing.Config{}, "client", tracing.Options{Exporter: exp, Root: tracing.RateSampler(1)})
	require.NoError(t, err)
	defer func() { _ = srvTP.Shutdown(context.Background()); _ = cliTP.Shutdown(context.Background()) }()
	seen := make(chan trace.SpanContext, 2)
	s := serve(t, func(ctx context.Context, req *in) (*out, error) {
		seen <- trace.SpanContextFromContext(ctx)
		return echo(ctx, req)
	}, withTracing(srvTP))
	m, _ := client(t, callmux.Options{Streams: 1, Tracer: grpcx.NewCallTracer(cliTP)}, grpcx.TraceDial(cliTP), s.addr)
	waitOpen(t, m, 1)

	ctx, root := cliTP.Tracer("test").Start(t.Context(), "once")
	_, err = m.Call(ctx, input("traced"))
	require.NoError(t, err)
	root.End()
	sc := <-seen
	require.True(t, sc.IsSampled())
	require.NoError(t, srvTP.ForceFlush(t.Context()))
	require.NoError(t, cliTP.ForceFlush(t.Context()))
	spans := exp.GetSpans()
	byKind := map[trace.SpanKind]tracetest.SpanStub{}
	for _, sp := range spans {
		if sp.Name == "asf.loader.v1.Loader/Once" {
			byKind[sp.SpanKind] = sp
		}
	}
	require.Len(t, byKind, 2, "%v", spans)
	cli, srv := byKind[trace.SpanKindClient], byKind[trace.SpanKindServer]
	require.Equal(t, root.SpanContext().SpanID(), cli.Parent.SpanID())
	require.Equal(t, cli.SpanContext.SpanID(), srv.Parent.SpanID())
	attrs := map[string]string{}
	for _, a := range srv.Attributes {
		attrs[string(a.Key)] = a.Value.String()
	}
	require.Equal(t, map[string]string{"rpc.system": "grpc", "rpc.service": "asf.loader.v1.Loader", "rpc.method": "Once", "rpc.grpc.status_code": "0"}, attrs)

	// Unsampled: no span, but the trace id reaches the server.
	exp.Reset()
	uctx := trace.ContextWithSpanContext(t.Context(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}}))
	_, err = m.Call(uctx, input("unsampled"))
	require.NoError(t, err)
	sc = <-seen
	require.False(t, sc.IsSampled())
	require.Equal(t, trace.TraceID{1, 2, 3}, sc.TraceID())
	require.NoError(t, srvTP.ForceFlush(t.Context()))
	require.Empty(t, exp.GetSpans())
}

// TestTraceContextTravels: over a stream, a span context with tracestate reaches the
// server whole (sampled: as the parent of its span; unsampled: in ctx), and a caller that
// sends only the W3C map (one built before the fixed-size trace fields) is still read.
func TestTraceContextTravels(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	srvTP, err := tracing.New(tracing.Config{}, "server", tracing.Options{Exporter: exp})
	require.NoError(t, err)
	cliTP, err := tracing.New(tracing.Config{}, "client", tracing.Options{Exporter: exp})
	require.NoError(t, err)
	defer func() { _ = srvTP.Shutdown(context.Background()); _ = cliTP.Shutdown(context.Background()) }()
	seen := make(chan trace.SpanContext, 1)
	s := serve(t, func(ctx context.Context, req *in) (*out, error) {
		seen <- trace.SpanContextFromContext(ctx)
		return echo(ctx, req)
	}, withTracing(srvTP))
	m, lc := client(t, callmux.Options{Streams: 1, Tracer: grpcx.NewCallTracer(cliTP)}, grpcx.TraceDial(cliTP), s.addr)
	waitOpen(t, m, 1)
	ts, err := trace.ParseTraceState("vendor=opaque,other=1")
	require.NoError(t, err)
	for _, flags := range []trace.TraceFlags{0, trace.FlagsSampled} {
		caller := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{7, 7}, SpanID: trace.SpanID{8, 8},
			TraceFlags: flags, TraceState: ts, Remote: true})
		_, err := m.Call(trace.ContextWithRemoteSpanContext(t.Context(), caller), input("tracestate"))
		require.NoError(t, err)
		sc := <-seen
		require.Equal(t, caller.TraceID(), sc.TraceID())
		require.Equal(t, flags.IsSampled(), sc.IsSampled())
		require.Equal(t, "vendor=opaque,other=1", sc.TraceState().String())
		if !flags.IsSampled() {
			require.True(t, sc.Equal(caller), "the caller's span context: %v", sc)
		}
	}
	require.Zero(t, s.f.unary.Load(), "every call went on the stream")

	st, err := lc.OnceStream(t.Context())
	require.NoError(t, err)
	require.NoError(t, st.Send(&loaderpb.OnceCall{Id: 1, Input: input("map only"),
		TraceContext: map[string]string{"traceparent": "00-0a0b0000000000000000000000000000-0c0d000000000000-00", "tracestate": "vendor=old"}}))
	r, err := st.Recv()
	require.NoError(t, err)
	require.EqualValues(t, codes.OK, r.GetGrpcCode())
	sc := <-seen
	require.Equal(t, trace.TraceID{0x0a, 0x0b}, sc.TraceID())
	require.Equal(t, trace.SpanID{0x0c, 0x0d}, sc.SpanID())
	require.Equal(t, "vendor=old", sc.TraceState().String())
	require.NoError(t, st.CloseSend())
}

// TestTraceFieldsRoundTrip: a span context without tracestate travels in the fixed-size
// fields, and in the map as well when sampled (for a server that reads only the map); one
// with tracestate in the map alone; none in neither; each reads back as it was sent, and
// the fixed-size fields win over a map beside them.
func TestTraceFieldsRoundTrip(t *testing.T) {
	ts, err := trace.ParseTraceState("vendor=opaque")
	require.NoError(t, err)
	cfg := trace.SpanContextConfig{TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, Remote: true}
	plain := trace.NewSpanContext(cfg)
	cfg.TraceFlags = trace.FlagsSampled
	sampled := trace.NewSpanContext(cfg)
	cfg.TraceState = ts
	stated := trace.NewSpanContext(cfg)
	for _, sc := range []trace.SpanContext{plain, sampled, stated, {}} {
		h := callmux.CallHeader{ID: 9, Timeout: time.Second, Trace: sc}
		var c loaderpb.OnceCall
		c.Id, c.TimeoutNs = h.ID, int64(h.Timeout)
		c.TraceIdHi, c.TraceIdLo, c.SpanId, c.TraceFlags, c.TraceContext = h.TraceFields()
		require.Equal(t, sc.IsValid() && sc.TraceState().Len() == 0, c.TraceIdHi != 0, "fixed-size fields for %v", sc)
		require.Equal(t, sc.IsSampled(), c.TraceContext != nil, "map for %v", sc)
		b, err := c.MarshalVT()
		require.NoError(t, err)
		var got loaderpb.OnceCall
		require.NoError(t, got.UnmarshalVT(b))
		require.Equal(t, h, callmux.CallHeaderOf(&got))
		if sc.IsSampled() {
			// A server that knows only the map reads the same span context from it.
			mapOnly := &loaderpb.OnceCall{Id: 9, TimeoutNs: int64(time.Second), TraceContext: got.TraceContext}
			require.Equal(t, h, callmux.CallHeaderOf(mapOnly), "map of %v", sc)
		}
	}
	both := &loaderpb.OnceCall{Id: 1, TraceIdHi: 1, TraceIdLo: 2, SpanId: 3, TraceFlags: 1,
		TraceContext: map[string]string{"traceparent": "00-0a0b0000000000000000000000000000-0c0d000000000000-00"}}
	sc := callmux.CallHeaderOf(both).Trace
	require.Equal(t, trace.TraceID{7: 1, 15: 2}, sc.TraceID())
	require.True(t, sc.IsSampled())
}

// TestIdleClientParksItsStreams: streams that took no call are not opened again at their
// age, so an idle client holds none (and dials nothing); the first call after that goes
// unary and opens them again.
func TestIdleClientParksItsStreams(t *testing.T) {
	s := serve(t, echo)
	m, _ := client(t, callmux.Options{Streams: 2, MaxAge: 20 * time.Millisecond}, nil, s.addr)
	waitOpen(t, m, 2)
	waitOpen(t, m, 0) // retired unused: parked
	served := s.f.streamsServed.Load()
	require.LessOrEqual(t, served, int64(2), "no stream opened again while idle")

	resp, err := m.Call(t.Context(), input("wake"))
	require.NoError(t, err)
	require.Equal(t, "wake", resp.GetServiceId())
	require.EqualValues(t, 1, s.f.unary.Load(), "the call that found no stream went unary")
	testpoll.Until(t, 5*time.Second, "streams opened again", func() bool { return s.f.streamsServed.Load() > served })
}

// TestRawStreamsShareTheFirstToAServer: raw streams to one server carry the calls on the
// first of them (one connection's writes), the others staying open; over two servers
// every server takes a share of the calls.
func TestRawStreamsShareTheFirstToAServer(t *testing.T) {
	// counted echoes and counts the calls of each connection (the peer's address).
	counted := func(conns *sync.Map) callmux.Handler[in, out] {
		return func(ctx context.Context, req *in) (*out, error) {
			p, _ := peer.FromContext(ctx)
			v, _ := conns.LoadOrStore(p.Addr.String(), new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
			return echo(ctx, req)
		}
	}
	total := func(conns *sync.Map) (calls int64, n int) {
		conns.Range(func(_, v any) bool {
			calls += v.(*atomic.Int64).Load()
			n++
			return true
		})
		return calls, n
	}
	var one sync.Map
	a := serve(t, counted(&one), withRaw())
	m, _ := client(t, callmux.Options{Streams: 4, Direct: &rawstream.Dialer{Target: a.addr}}, nil, a.addr)
	waitOpen(t, m, 4)
	for i := range 100 {
		_, err := m.Call(t.Context(), input(strconv.Itoa(i)))
		require.NoError(t, err)
	}
	require.Zero(t, a.f.unary.Load())
	calls, n := total(&one)
	require.Equal(t, [2]int64{100, 1}, [2]int64{calls, int64(n)}, "calls, connections")
	require.Equal(t, 4, m.Open())

	var toA, toB sync.Map
	a2, b := serve(t, counted(&toA), withRaw()), serve(t, counted(&toB), withRaw())
	m2, _ := client(t, callmux.Options{Streams: 4, Direct: &rawstream.Dialer{Target: a2.addr + "," + b.addr}}, nil, a2.addr, b.addr)
	waitOpen(t, m2, 4)
	for i := range 400 {
		_, err := m2.Call(t.Context(), input(strconv.Itoa(i)))
		require.NoError(t, err)
	}
	for _, conns := range []*sync.Map{&toA, &toB} {
		calls, _ := total(conns)
		require.GreaterOrEqual(t, calls, int64(100), "a server took %d of 400 calls", calls)
	}
}
