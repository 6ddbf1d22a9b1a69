package callmux_test

import (
	"context"
	"io"
	"net"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/callmux"
	"github.com/athenaserving/asf/libs/callmux/muxwire"
	"github.com/athenaserving/asf/libs/grpcx"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/libs/rawstream"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/libs/tracing"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// BenchmarkOnce compares a once call over the unary RPC with the same call on a callmux
// stream, both over a real loopback connection with the project's server chain
// (grpcx.NewServer: recovery, logging, metrics, the caller check, the message limits) and
// client (grpcx.Dial), an echo handler and a small payload. c1 is one caller at a time;
// c64 is 64 concurrent callers. cpu-ns/op is the process's CPU time (user + system, both
// sides and the GC) per call, the figure the suite's CPU per request is made of; ns/op is
// wall time per call. Run the pairs interleaved on a busy machine:
//
//	go test -c -o /tmp/cm.test ./libs/callmux && for i in 1 2 3 4 5; do /tmp/cm.test -test.run '^$' -test.bench Once -test.benchmem -test.cpu 2; done
func BenchmarkOnce(b *testing.B) {
	for _, conc := range []int{1, 64} {
		for _, way := range []string{"unary", "mux", "raw"} {
			b.Run(way+"/c"+strconv.Itoa(conc), func(b *testing.B) {
				call := benchSetup(b, way)
				req := &in{ServiceId: "echo", Headers: map[string]string{"sid": "ase000d1b0a@dx18f0e2b1a2c0001", "app_id": "app1", "uid": "u1"},
					Pl: []*loaderpb.Payload{{Meta: &loaderpb.MetaDesc{Name: "text", Attribute: map[string]string{"encoding": "utf8"}}, Data: make([]byte, 128)}}}
				b.ReportAllocs()
				start := cpuTime()
				b.ResetTimer()
				if conc == 1 {
					for b.Loop() {
						if _, err := call(context.Background(), req); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					b.SetParallelism(max(1, conc/runtime.GOMAXPROCS(0))) // conc goroutines in all
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if _, err := call(context.Background(), req); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				b.StopTimer()
				b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// benchSetup serves an echo Loader with the project's chain and returns a call function:
// the unary Once ("unary"), or Once over a callmux client with two gRPC streams ("mux") or
// two raw streams ("raw", libs/rawstream on the same port).
func benchSetup(b *testing.B, way string) func(context.Context, *in) (*out, error) {
	b.Helper()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	split := rawstream.Listen(tcp, rawstream.ListenOptions{})
	var ln net.Listener = split.GRPC()
	reg := prometheus.NewRegistry()
	sopts := append(grpcx.AllowCallers("atom"), grpcx.ServerMsgSize(0)...)
	srv := grpcx.NewServer("bench", zerolog.Nop(), reg, sopts...)
	f := &fakeLoader{handle: echo, runs: map[string]int{}}
	f.mux = muxwire.NewLoaderServer(echo, callmux.ServerOptions{Recorder: grpcx.NewCallRecorder("bench", zerolog.Nop(), reg, nil)})
	loaderpb.RegisterLoaderServer(srv.Server, benchLoader{f: f})
	muxwire.ServeLoader(split, f.mux, "atom")
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	cc, err := grpcx.Dial(ln.Addr().String(), grpcx.FastFailure(), grpcx.CallMsgSize(0))
	require.NoError(b, err)
	lc := loaderpb.NewLoaderClient(cc)
	opts := callmux.Options{}
	if way != "unary" {
		opts.Streams = 2
	}
	if way == "raw" {
		opts.Direct = &rawstream.Dialer{Target: split.Addr().String()}
	}
	m := muxwire.NewLoaderClient(lc, opts)
	b.Cleanup(func() {
		_ = m.Close()
		_ = cc.Close()
		srv.Stop()
		<-done
		split.Shutdown(context.Background())
		f.mux.Close()
	})
	deadline := time.Now().Add(5 * time.Second)
	for m.Open() < opts.Streams && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // set-up before the timer starts
	}
	require.Equal(b, opts.Streams, m.Open())
	return func(ctx context.Context, req *in) (*out, error) { return m.Call(ctx, req) }
}

// benchLoader is the fake loader without the per-call bookkeeping of the tests.
type benchLoader struct {
	loaderpb.UnimplementedLoaderServer
	f *fakeLoader
}

func (l benchLoader) Once(ctx context.Context, req *in) (*out, error) { return echo(ctx, req) }

func (l benchLoader) OnceStream(st loaderpb.Loader_OnceStreamServer) error { return l.f.mux.Serve(st) }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTraceContext measures what a call's trace context costs each side of a stream,
// without the network: send is Client.Call from the caller's context to its message
// encoded by grpcx.Codec (and the reply handed back), receive is Server.Serve from that
// encoded message (decoded by grpcx.Codec) through the CallRecorder and an echo handler to
// the reply; read is the part of receive on the stream's own goroutines, without the
// hand-off to a worker: decode, CallHeaderOf, CallRecorder.Serve of an empty handler.
// none carries no trace context; unsampled carries the span context of an
// unsampled trace, what 99 % of calls carry at 1 % sampling. Tracing is on at both ends.
// Each call crosses goroutines (the stream's receiver, the server's worker), whose
// hand-offs make ns/op noisy on a busy machine; cpu-ns/op (the process's CPU time per
// call, as in BenchmarkOnce) and allocs/op are the steadier figures.
//
//	go test -run '^$' -bench TraceContext -benchmem -count 5 -cpu 2 ./libs/callmux
func BenchmarkTraceContext(b *testing.B) {
	tp, err := tracing.New(tracing.Config{}, "bench", tracing.Options{Exporter: tracetest.NewInMemoryExporter(), Root: tracing.RateSampler(0.01)})
	require.NoError(b, err)
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	unsampled := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:  trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}}))
	req := &in{ServiceId: "echo", Headers: map[string]string{"sid": "ase000d1b0a@dx18f0e2b1a2c0001", "app_id": "app1", "uid": "u1"},
		Pl: []*loaderpb.Payload{{Meta: &loaderpb.MetaDesc{Name: "text", Attribute: map[string]string{"encoding": "utf8"}}, Data: make([]byte, 128)}}}
	for _, tc := range []struct {
		name string
		ctx  context.Context
	}{{"none", context.Background()}, {"unsampled", unsampled}} {
		b.Run("send/"+tc.name, func(b *testing.B) {
			m := loopClient(b, tp, nil)
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				if _, err := m.Call(tc.ctx, req); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		})
		b.Run("read/"+tc.name, func(b *testing.B) {
			// The receiver's own work on one goroutine: decode the message, read its
			// header, run the call through the recorder (an empty handler).
			wire := make(chan []byte, 1)
			m := loopClient(b, tp, wire)
			_, err := m.Call(tc.ctx, req)
			require.NoError(b, err)
			msg := mem.BufferSlice{mem.SliceBuffer(<-wire)}
			rec := grpcx.NewCallRecorder("bench", zerolog.Nop(), prometheus.NewRegistry(), tp)
			nop := func(context.Context) error { return nil }
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				c := new(loaderpb.OnceCall)
				if err := (grpcx.Codec{}).Unmarshal(msg, c); err != nil {
					b.Fatal(err)
				}
				h := callmux.CallHeaderOf(c)
				if err := rec.Serve(b.Context(), loaderpb.Loader_Once_FullMethodName, h.Trace, nop); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		})
		b.Run("receive/"+tc.name, func(b *testing.B) {
			// The message this version's sender encodes for the call.
			wire := make(chan []byte, 1)
			m := loopClient(b, tp, wire)
			_, err := m.Call(tc.ctx, req)
			require.NoError(b, err)
			msg := <-wire
			srv := muxwire.NewLoaderServer(echo, callmux.ServerOptions{
				Recorder: grpcx.NewCallRecorder("bench", zerolog.Nop(), prometheus.NewRegistry(), tp)})
			st := &wireServerStream{ctx: b.Context(), in: make(chan []byte), out: make(chan struct{}, 1)}
			served := make(chan error, 1)
			go func() { served <- srv.Serve(st) }()
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				st.in <- msg
				<-st.out
			}
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
			b.StopTimer()
			close(st.in)
			require.NoError(b, <-served)
			srv.Close()
		})
	}
}

// loopClient returns muxwire's loader client with one stream whose server is the stream
// itself: each call is encoded as gRPC encodes it (and copied to wire, when set) and
// answered at once.
func loopClient(b *testing.B, tp *tracing.Provider, wire chan<- []byte) *muxwire.LoaderClient {
	b.Helper()
	m := muxwire.NewLoaderClient(loopLoader{wire: wire}, callmux.Options{Streams: 1, Tracer: grpcx.NewCallTracer(tp), MaxAge: time.Hour})
	b.Cleanup(func() { _ = m.Close() })
	testpoll.Until(b, 5*time.Second, "the stream open", func() bool { return m.Open() == 1 })
	return m
}

// loopLoader is a LoaderClient whose OnceStream is a loopStream; it has no other RPC.
type loopLoader struct {
	loaderpb.LoaderClient
	wire chan<- []byte
}

func (l loopLoader) OnceStream(ctx context.Context, _ ...grpc.CallOption) (grpc.BidiStreamingClient[loaderpb.OnceCall, loaderpb.OnceReply], error) {
	return &loopStream{ctx: ctx, wire: l.wire, replies: make(chan *loaderpb.OnceReply, 16), closed: make(chan struct{})}, nil
}

func (loopLoader) Once(context.Context, *in, ...grpc.CallOption) (*out, error) {
	return nil, status.Error(codes.Unavailable, "the benchmark's calls go on the stream")
}

// loopStream is a client stream answering each call itself.
type loopStream struct {
	grpc.ClientStream
	ctx     context.Context
	wire    chan<- []byte
	replies chan *loaderpb.OnceReply
	closed  chan struct{}
}

func (s *loopStream) Send(c *loaderpb.OnceCall) error {
	data, err := grpcx.Codec{}.Marshal(c)
	if err != nil {
		return err
	}
	if s.wire != nil {
		select {
		case s.wire <- data.Materialize():
		default:
		}
	}
	data.Free()
	s.replies <- &loaderpb.OnceReply{Id: c.GetId(), Output: &out{ServiceId: "echo"}}
	return nil
}

func (s *loopStream) Recv() (*loaderpb.OnceReply, error) {
	select {
	case r := <-s.replies:
		return r, nil
	case <-s.closed:
		return nil, io.EOF
	case <-s.ctx.Done():
		return nil, status.FromContextError(s.ctx.Err()).Err()
	}
}

func (s *loopStream) Header() (metadata.MD, error) { return metadata.MD{}, nil }
func (s *loopStream) Trailer() metadata.MD         { return nil }
func (s *loopStream) Context() context.Context     { return s.ctx }
func (s *loopStream) CloseSend() error {
	close(s.closed)
	return nil
}

// wireServerStream is a server stream fed encoded call messages; each reply is signalled
// on out.
type wireServerStream struct {
	grpc.ServerStream
	ctx context.Context
	in  chan []byte
	out chan struct{}
}

func (s *wireServerStream) Recv() (*loaderpb.OnceCall, error) {
	select {
	case b, ok := <-s.in:
		if !ok {
			return nil, io.EOF
		}
		c := new(loaderpb.OnceCall)
		if err := (grpcx.Codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, c); err != nil {
			return nil, err
		}
		return c, nil
	case <-s.ctx.Done():
		return nil, status.FromContextError(s.ctx.Err()).Err()
	}
}

func (s *wireServerStream) Send(*loaderpb.OnceReply) error {
	s.out <- struct{}{}
	return nil
}

func (s *wireServerStream) SendHeader(metadata.MD) error { return nil }
func (s *wireServerStream) Context() context.Context     { return s.ctx }
