// Package transport adapts atom to gRPC: the Atom service (Call, Stream) over the router,
// and the gRPC client of the loaders that the router uses (lbclient's is libs/lbpick).
package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/callmux"
	"github.com/athenaserving/asf/libs/callmux/muxwire"
	"github.com/athenaserving/asf/libs/grpcx"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/libs/rawstream"
	"github.com/athenaserving/asf/services/atom/route"
	"github.com/rs/zerolog"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"
)

// Loaders reaches loaders over gRPC through a connection pool keyed by address. Once
// requests travel over a few long-lived OnceStreams per loader (libs/callmux), unary
// Loader.Once while none is open; sessions are one Loader.Session stream each.
type Loaders struct {
	pool *grpcx.Pool
	opts LoaderOptions
	// mu guards conns and closed.
	mu     sync.Mutex
	conns  map[string]*loaderConn // by address, over the pool's connection to it
	closed bool
}

// LoaderOptions tunes how Loaders calls loaders; zero fields take the defaults noted.
type LoaderOptions struct {
	// Streams is how many OnceStreams to keep open to each loader (0: every once request
	// is a unary Loader.Once).
	Streams int
	// Direct, when set, gives the dialer of a loader's raw streams (libs/rawstream; nil
	// Dialer or nil Direct: gRPC streams).
	Direct func(addr string) *rawstream.Dialer
	// Tracer traces the once requests sent on streams (nil: tracing off); the unary calls
	// are traced by the pool's connections.
	Tracer *grpcx.CallTracer
	// Log is the logger of the streams' clients.
	Log zerolog.Logger
}

// NewLoaders returns Loaders dialling through pool. Close stops its streams; the pool
// stays its owner's.
func NewLoaders(pool *grpcx.Pool, opts LoaderOptions) *Loaders {
	return &Loaders{pool: pool, opts: opts, conns: map[string]*loaderConn{}}
}

// Loader returns the loader at addr.
func (l *Loaders) Loader(addr string) (route.Loader, error) {
	cc, err := l.pool.Get(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", aserr.ErrNetwork, err)
	}
	l.mu.Lock()
	c := l.conns[addr]
	if c != nil && c.cc == cc {
		l.mu.Unlock()
		return c, nil
	}
	// New, or the pool dialled addr again since (the old connection was closed): one
	// stream client per connection, closed with it.
	old := c
	c = &loaderConn{cc: cc, c: loaderpb.NewLoaderClient(cc)}
	if l.opts.Streams > 0 && !l.closed && cc.GetState() != connectivity.Shutdown {
		o := callmux.Options{Streams: l.opts.Streams, Tracer: l.opts.Tracer, Log: l.opts.Log.With().Str("loader", addr).Logger()}
		if l.opts.Direct != nil {
			o.Direct = l.opts.Direct(addr)
		}
		c.mux = muxwire.NewLoaderClient(c.c, o)
		l.conns[addr] = c
	}
	l.mu.Unlock()
	if old != nil && old.mux != nil {
		_ = old.mux.Close()
	}
	return c, nil
}

// Streams is how many once streams to the loader at addr take calls now.
func (l *Loaders) Streams(addr string) int {
	l.mu.Lock()
	c := l.conns[addr]
	l.mu.Unlock()
	if c == nil || c.mux == nil {
		return 0
	}
	return c.mux.Open()
}

// Forget closes the connection to addr (a loader lbclient dropped from rotation) and its
// once streams: every call and session in flight there fails at once with 10222.
func (l *Loaders) Forget(addr string) {
	l.pool.Forget(addr)
	l.mu.Lock()
	c := l.conns[addr]
	delete(l.conns, addr)
	l.mu.Unlock()
	if c != nil && c.mux != nil {
		_ = c.mux.Close()
	}
}

// Close stops every loader's once streams (calls still on them fail with 10222); the
// pool's connections stay open for the pool's owner to close.
func (l *Loaders) Close() {
	l.mu.Lock()
	conns := l.conns
	l.conns, l.closed = map[string]*loaderConn{}, true
	l.mu.Unlock()
	for _, c := range conns {
		if c.mux != nil {
			_ = c.mux.Close()
		}
	}
}

// loaderConn is one loader as the router sees it.
type loaderConn struct {
	cc  *grpc.ClientConn
	c   loaderpb.LoaderClient
	mux *muxwire.LoaderClient // nil: no once streams
}

func (l *loaderConn) Once(ctx context.Context, in *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
	var out *loaderpb.LoaderOutput
	var err error
	if l.mux != nil {
		out, err = l.mux.Call(ctx, in)
	} else {
		out, err = l.c.Once(ctx, in)
	}
	if err != nil {
		return nil, loaderErr(ctx, err)
	}
	if err := outputErr(out); err != nil {
		return nil, err
	}
	return out, nil
}

// outputErr is the error a loader output carries in band (code != 0). The loader reports
// every error as a gRPC status with the code in its details (docs/contracts.md, "One
// channel per error"); an output with a code is turned into the same coded error here, so
// the router sees a loader's errors one way whichever way they came.
func outputErr(out *loaderpb.LoaderOutput) error {
	if out.GetCode() == 0 {
		return nil
	}
	return fmt.Errorf("loader output: %w", aserr.Received(int(out.GetCode()), out.GetErr()))
}

// Public forms of the network error 10222 for a loader that cannot be reached or went
// away: the transport detail (addresses, dial errors) is wrapped around them for the log
// and left out of the message that travels on (aserr.MessageOf).
var (
	errLoaderUnreachable = aserr.Received(aserr.ErrNetwork.Code, "engine node unreachable")
	errLoaderGone        = aserr.Received(aserr.ErrNetwork.Code, "engine node went away")
)

// loaderErr converts a loader call's gRPC error. A cancellation that is not ours (our ctx
// is live) is the loader or its connection resetting the stream — a dying loader — and is
// reported as the network error 10222, which the router may retry elsewhere; so is an
// Unavailable status that carries no code of the loader's (the connection failed).
func loaderErr(ctx context.Context, err error) error {
	st := status.Convert(err)
	switch {
	case st.Code() == codes.Canceled && ctx.Err() == nil:
		return fmt.Errorf("loader reset the call: %s: %w", st.Message(), errLoaderGone)
	case st.Code() == codes.Unavailable && !carriesCode(st):
		return fmt.Errorf("loader call: %s: %w", st.Message(), errLoaderUnreachable)
	}
	return grpcx.FromStatus(err)
}

// carriesCode tells whether st holds an ASE code set by the loader.
func carriesCode(st *status.Status) bool {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == "asf" {
			return true
		}
	}
	return false
}

func (l *loaderConn) Session(ctx context.Context) (route.Session, error) {
	st, err := l.c.Session(ctx)
	if err != nil {
		return nil, loaderErr(ctx, err)
	}
	return loaderSession{st: st, ctx: ctx}, nil
}

type loaderSession struct {
	st  grpc.BidiStreamingClient[loaderpb.LoaderInput, loaderpb.LoaderOutput]
	ctx context.Context // the session's context: tells our cancellations from the loader's
}

func (s loaderSession) Send(in *loaderpb.LoaderInput) error {
	if err := s.st.Send(in); err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		return loaderErr(s.ctx, err)
	}
	return nil
}

func (s loaderSession) CloseSend() error { return s.st.CloseSend() }

func (s loaderSession) Recv() (*loaderpb.LoaderOutput, error) {
	out, err := s.st.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, loaderErr(s.ctx, err)
	}
	if err := outputErr(out); err != nil {
		return nil, err
	}
	return out, nil
}
