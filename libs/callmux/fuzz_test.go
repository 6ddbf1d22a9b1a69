package callmux_test

import (
	"context"
	"io"
	"sync"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/callmux"
	"github.com/athenaserving/asf/libs/callmux/muxwire"
	"github.com/athenaserving/asf/libs/grpcx"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/libs/tracing"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// memStream is a server stream in memory: Recv reads in until it is closed (io.EOF),
// Send keeps the replies.
type memStream struct {
	ctx context.Context
	in  chan *loaderpb.OnceCall
	mu  sync.Mutex
	out []*loaderpb.OnceReply
}

func (m *memStream) Recv() (*loaderpb.OnceCall, error) {
	select {
	case c, ok := <-m.in:
		if !ok {
			return nil, io.EOF
		}
		return c, nil
	case <-m.ctx.Done():
		return nil, status.FromContextError(m.ctx.Err()).Err()
	}
}

func (m *memStream) Send(r *loaderpb.OnceReply) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.out = append(m.out, r)
	return nil
}

func (m *memStream) SetHeader(metadata.MD) error  { return nil }
func (m *memStream) SendHeader(metadata.MD) error { return nil }
func (m *memStream) SetTrailer(metadata.MD)       {}
func (m *memStream) Context() context.Context     { return m.ctx }
func (m *memStream) SendMsg(any) error            { return nil }
func (m *memStream) RecvMsg(any) error            { return nil }

// FuzzServerMessages feeds a stream any sequence of calls and cancels (ids from a small
// space, so they repeat and cancels hit running calls; some calls fail or panic) and
// checks what the server owes the client: Serve ends cleanly once the client closes its
// side, every call message gets exactly one reply unless a cancel for its id was sent,
// and a panic comes back as 11502. Each call carries a trace context — the fixed-size
// fields traceHi, traceLo, span and flags, the W3C map with traceparent and tracestate,
// or both, by the op's bits — and its handler checks that ctx holds the trace the
// message's fields make (none for fields that make no valid one).
func FuzzServerMessages(f *testing.F) {
	f.Add([]byte{1, 2, 3}, uint64(0), uint64(0), uint64(0), uint32(0), "", "")
	f.Add([]byte{1, 1, 0x21, 1}, uint64(0x4bf92f3577b34da6), uint64(0xa3ce929d0e0e4736), uint64(0xf067aa0ba902b7), uint32(1),
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "vendor=opaque")
	f.Add([]byte{0, 0x41, 0x81, 0x22, 2, 3}, uint64(0), uint64(7), uint64(0), uint32(0x1ff), "00-bad", "")
	exp := tracetest.NewNoopExporter()
	tp, err := tracing.New(tracing.Config{}, "fuzz", tracing.Options{Exporter: exp})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	rec := grpcx.NewCallRecorder("fuzz", zerolog.Nop(), nil, tp)
	f.Fuzz(func(t *testing.T, ops []byte, traceHi, traceLo, span uint64, flags uint32, traceparent, tracestate string) {
		srv := muxwire.NewLoaderServer(func(ctx context.Context, in *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
			switch in.GetServiceId() {
			case "fail":
				return nil, grpcx.ToStatus(aserr.ErrLicenceFull)
			case "panic":
				panic("handler bug")
			}
			want := in.GetHeaders()["trace"]
			if got, _ := tracing.TraceID(ctx); got != want {
				return nil, status.Errorf(codes.DataLoss, "trace id %q in ctx, want %q", got, want)
			}
			return &loaderpb.LoaderOutput{ServiceId: in.GetServiceId()}, nil
		}, callmux.ServerOptions{Workers: 2, Recorder: rec})
		defer srv.Close()
		st := &memStream{ctx: t.Context(), in: make(chan *loaderpb.OnceCall, len(ops))}
		calls := map[uint64]int{}
		cancelled := map[uint64]bool{}
		tc := map[string]string{"traceparent": traceparent, "tracestate": tracestate}
		for _, b := range ops {
			id := uint64(b & 0x1f)
			if b&0x20 != 0 {
				cancelled[id] = true
				st.in <- &loaderpb.OnceCall{Id: id, Cancel: true}
				continue
			}
			kind := "ok"
			switch {
			case b&0x80 != 0:
				kind = "panic"
			case b&0x40 != 0:
				kind = "fail"
			}
			calls[id]++
			c := &loaderpb.OnceCall{Id: id, Input: &loaderpb.LoaderInput{ServiceId: kind}}
			if b&1 == 0 {
				c.TraceIdHi, c.TraceIdLo, c.SpanId, c.TraceFlags = traceHi, traceLo, span, flags
			}
			if b&2 == 0 {
				c.TraceContext = tc
			}
			var want trace.SpanContext
			switch {
			case c.TraceIdHi != 0 || c.TraceIdLo != 0:
				want = tracing.Unpack(traceHi, traceLo, span, flags)
			case c.TraceContext != nil:
				want = tracing.SpanContextOf(tc)
			}
			if want.IsValid() {
				c.Input.Headers = map[string]string{"trace": want.TraceID().String()}
			}
			st.in <- c
		}
		close(st.in)
		if err := srv.Serve(st); err != nil {
			t.Fatalf("Serve after the client closed its side: %v", err)
		}
		// The answers there may be: a result, the handler's 10110, a panic's 11502, a
		// refused id (0, or one already running).
		want := map[[2]int32]bool{{int32(codes.OK), 0}: true, {int32(codes.ResourceExhausted), 10110}: true,
			{int32(codes.Unknown), int32(aserr.ErrInternal.Code)}: true, {int32(codes.InvalidArgument), 0}: true}
		replies := map[uint64]int{}
		for _, r := range st.out {
			replies[r.GetId()]++
			if !want[[2]int32{int32(r.GetGrpcCode()), r.GetCode()}] || r.GetDrain() || r.GetNotRun() {
				t.Fatalf("unexpected reply %v", r)
			}
		}
		for id, n := range calls {
			if got := replies[id]; cancelled[id] && got > n || !cancelled[id] && got != n {
				t.Fatalf("call %d: %d messages, %d replies (cancelled: %v)", id, n, got, cancelled[id])
			}
		}
		for id := range replies {
			if calls[id] == 0 {
				t.Fatalf("reply to %d, which was never called", id)
			}
		}
	})
}
