package callmux_test

import (
	"context"
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
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
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
		for _, way := range []string{"unary", "mux"} {
			b.Run(way+"/c"+strconv.Itoa(conc), func(b *testing.B) {
				call := benchSetup(b, way == "mux")
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
// the unary Once, or Once over a callmux client with two streams.
func benchSetup(b *testing.B, muxed bool) func(context.Context, *in) (*out, error) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	reg := prometheus.NewRegistry()
	opts := append(grpcx.AllowCallers("atom"), grpcx.ServerMsgSize(0)...)
	srv := grpcx.NewServer("bench", zerolog.Nop(), reg, opts...)
	f := &fakeLoader{handle: echo, runs: map[string]int{}}
	f.mux = muxwire.NewLoaderServer(echo, callmux.ServerOptions{Recorder: grpcx.NewCallRecorder("bench", zerolog.Nop(), reg, nil)})
	loaderpb.RegisterLoaderServer(srv.Server, benchLoader{f: f})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	cc, err := grpcx.Dial(ln.Addr().String(), grpcx.FastFailure(), grpcx.CallMsgSize(0))
	require.NoError(b, err)
	lc := loaderpb.NewLoaderClient(cc)
	streams := 0
	if muxed {
		streams = 2
	}
	m := muxwire.NewLoaderClient(lc, callmux.Options{Streams: streams})
	b.Cleanup(func() {
		_ = m.Close()
		_ = cc.Close()
		srv.Stop()
		<-done
		f.mux.Close()
	})
	deadline := time.Now().Add(5 * time.Second)
	for m.Open() < streams && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // set-up before the timer starts
	}
	require.Equal(b, streams, m.Open())
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
