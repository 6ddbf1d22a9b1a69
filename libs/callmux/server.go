package callmux

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// ServerOptions tunes a Server; zero fields take the defaults noted.
type ServerOptions struct {
	// Method is the full name of the unary RPC the calls stand for
	// ("/asf.loader.v1.Loader/Once"): their method in metrics, log lines and spans.
	Method string
	// Recorder records every call as the server's interceptors record a unary call
	// (grpcx.NewCallRecorder); nil: panics are still recovered, nothing is recorded.
	Recorder *grpcx.CallRecorder
	// Workers is how many long-lived goroutines run calls (default grpcx.StreamWorkers):
	// a call run on one reuses its grown stack, where a fresh goroutine would grow (and
	// copy) its stack again on the way down the handler. Calls beyond the busy workers
	// get a goroutine of their own.
	Workers int
	// Log is the server's logger.
	Log zerolog.Logger
}

// Handler serves one call, as the unary RPC's handler does: a response, or a status
// error (grpcx.ToStatus).
type Handler[Req, Resp any] func(ctx context.Context, req *Req) (*Resp, error)

// Server serves the calls sent on streams by Clients: each call runs concurrently,
// through Handler, and is answered when it finishes. Serve serves one stream; Drain
// ends them all for a shutdown; Close stops the workers.
type Server[Req, Resp, C, R any] struct {
	handler Handler[Req, Resp]
	wire    ServerWire[Req, Resp, C, R]
	opts    ServerOptions
	work    chan *call[Req, Resp, C, R]
	quit    chan struct{}
	workers sync.WaitGroup
	// mu guards streams, draining and closed, and readers.Add (never beside Close's Wait).
	mu       sync.Mutex
	streams  map[*serverStream[Req, Resp, C, R]]struct{}
	draining bool
	closed   bool
	readers  sync.WaitGroup // stream readers, which may outlive Serve by a Recv
}

// NewServer returns a Server running calls with handler and starts its workers.
func NewServer[Req, Resp, C, R any](handler Handler[Req, Resp], wire ServerWire[Req, Resp, C, R], opts ServerOptions) *Server[Req, Resp, C, R] {
	if opts.Workers <= 0 {
		opts.Workers = grpcx.StreamWorkers
	}
	s := &Server[Req, Resp, C, R]{handler: handler, wire: wire, opts: opts,
		work: make(chan *call[Req, Resp, C, R]), quit: make(chan struct{}),
		streams: map[*serverStream[Req, Resp, C, R]]struct{}{}}
	for range opts.Workers {
		s.workers.Go(func() {
			for {
				select {
				case c := <-s.work:
					s.run(c)
				case <-s.quit:
					return
				}
			}
		})
	}
	return s
}

// Close stops the workers and waits for them and for the stream readers; call it after
// the gRPC server stopped. A stream that still arrives (grpc's Stop does not wait for the
// handlers it cancelled) gets Unavailable.
func (s *Server[Req, Resp, C, R]) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.quit)
	}
	s.mu.Unlock()
	s.workers.Wait()
	s.readers.Wait()
}

// Drain ends every stream, open or opened later, without losing a call: each is told to
// take no more calls (a reply with Drain), calls that arrive after that are answered "not
// run" (the client sends them elsewhere), and once the calls in flight are answered the
// stream ends. It returns at once: pass it to lifecycle.StopWithin, so that long-lived
// streams do not hold up the graceful stop.
func (s *Server[Req, Resp, C, R]) Drain() {
	s.mu.Lock()
	s.draining = true
	streams := make([]*serverStream[Req, Resp, C, R], 0, len(s.streams))
	for ss := range s.streams {
		streams = append(streams, ss)
	}
	s.mu.Unlock()
	for _, ss := range streams {
		ss.drain()
	}
}

// Streams is how many streams are being served now.
func (s *Server[Req, Resp, C, R]) Streams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.streams)
}

// Serve serves the calls of one stream until the client closes its side (after the calls
// in flight are answered), the stream breaks (the calls in flight are cancelled) or Drain
// ends it. It is the body of the service's stream RPC.
func (s *Server[Req, Resp, C, R]) Serve(st grpc.BidiStreamingServer[C, R]) error {
	// Headers first: the client sends calls only once it has them, so a server without
	// the stream RPC (a status and no headers) never receives one.
	if err := st.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(st.Context())
	defer cancel()
	ss := &serverStream[Req, Resp, C, R]{s: s, st: st, ctx: ctx, calls: map[uint64]*call[Req, Resp, C, R]{}, drained: make(chan struct{})}
	_, ss.conc = st.(ConcurrentSender)
	read := make(chan error, 1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return status.Error(codes.Unavailable, "call stream server closed")
	}
	s.streams[ss] = struct{}{}
	draining := s.draining
	s.readers.Go(func() { read <- ss.read() })
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.streams, ss)
		s.mu.Unlock()
	}()
	if draining {
		ss.drain()
	}
	var err error
	select {
	case err = <-read:
		if errors.Is(err, io.EOF) {
			err = nil // the client closed its side: answer what it sent, then end
		} else {
			cancel() // broken: nobody waits for these answers
		}
	case <-ss.drained:
	}
	// No call starts after read returned or the stream drained; wait for the running ones
	// (their answers go out before the stream ends), then let nothing more be sent.
	ss.running.Wait()
	ss.wmu.Lock()
	ss.ended = true
	ss.wmu.Unlock()
	return err
}

// serverStream is one stream being served. mu guards calls and draining; wmu guards
// ended and is held across every Send (one sender at a time; shared by the Sends of a
// ConcurrentSender); mu is never taken while wmu is held.
type serverStream[Req, Resp, C, R any] struct {
	s        *Server[Req, Resp, C, R]
	st       grpc.BidiStreamingServer[C, R]
	ctx      context.Context // the stream's; cancelled when it ends
	mu       sync.Mutex
	calls    map[uint64]*call[Req, Resp, C, R] // running
	draining bool
	drained  chan struct{} // closed by drain
	running  sync.WaitGroup
	wmu      sync.RWMutex // shared across the Sends of a ConcurrentSender
	conc     bool         // st is a ConcurrentSender
	ended    bool         // Serve is returning: Send no more
}

// call is one call running.
type call[Req, Resp, C, R any] struct {
	ss     *serverStream[Req, Resp, C, R]
	id     uint64
	req    *Req
	trace  trace.SpanContext // the caller's (not valid: none)
	ctx    context.Context
	cancel context.CancelFunc
	// abandoned: the client cancelled it and expects no reply (guarded by ss.mu).
	abandoned bool
}

// read receives the stream's messages until it ends: each call starts (or, once
// draining, is answered "not run"), each cancel cancels its call.
func (ss *serverStream[Req, Resp, C, R]) read() error {
	for {
		m, err := ss.st.Recv()
		if err != nil {
			return err
		}
		h, req := ss.s.wire.ReadCall(m)
		if h.Cancel {
			ss.abandon(h.ID)
			continue
		}
		ss.mu.Lock()
		if ss.draining {
			ss.mu.Unlock()
			_ = ss.send(ss.s.wire.NewReply(ReplyHeader{ID: h.ID, NotRun: true}, nil))
			continue
		}
		if _, dup := ss.calls[h.ID]; dup || h.ID == 0 {
			ss.mu.Unlock()
			_ = ss.send(ss.s.wire.NewReply(ReplyHeader{ID: h.ID, Status: codes.InvalidArgument, Message: "call id 0 or already running"}, nil))
			continue
		}
		c := &call[Req, Resp, C, R]{ss: ss, id: h.ID, req: req, trace: h.Trace}
		if h.Timeout > 0 {
			c.ctx, c.cancel = context.WithTimeout(ss.ctx, h.Timeout)
		} else {
			c.ctx, c.cancel = context.WithCancel(ss.ctx)
		}
		ss.calls[h.ID] = c
		ss.running.Add(1)
		ss.mu.Unlock()
		ss.s.dispatch(c)
	}
}

// abandon cancels call id for a client that gave up on it: it gets no reply.
func (ss *serverStream[Req, Resp, C, R]) abandon(id uint64) {
	ss.mu.Lock()
	c := ss.calls[id]
	if c != nil {
		c.abandoned = true
	}
	ss.mu.Unlock()
	if c != nil {
		c.cancel()
	}
}

// drain tells the client to send no more calls here; Serve ends the stream once the
// running calls are answered.
func (ss *serverStream[Req, Resp, C, R]) drain() {
	ss.mu.Lock()
	if ss.draining {
		ss.mu.Unlock()
		return
	}
	ss.draining = true
	ss.mu.Unlock()
	_ = ss.send(ss.s.wire.NewReply(ReplyHeader{Drain: true}, nil))
	close(ss.drained)
}

// send sends r unless the stream has ended.
func (ss *serverStream[Req, Resp, C, R]) send(r *R) error {
	if ss.conc {
		ss.wmu.RLock()
		defer ss.wmu.RUnlock()
	} else {
		ss.wmu.Lock()
		defer ss.wmu.Unlock()
	}
	if ss.ended {
		return context.Canceled
	}
	return ss.st.Send(r)
}

// dispatch runs c on an idle worker, else on a goroutine of its own.
func (s *Server[Req, Resp, C, R]) dispatch(c *call[Req, Resp, C, R]) {
	select {
	case s.work <- c:
	default:
		go s.run(c)
	}
}

// run runs one call and answers it (unless its client abandoned it).
func (s *Server[Req, Resp, C, R]) run(c *call[Req, Resp, C, R]) {
	var resp *Resp
	err := s.opts.Recorder.Serve(c.ctx, s.opts.Method, c.trace, func(ctx context.Context) error {
		var err error
		resp, err = s.handler(ctx, c.req)
		return err
	})
	c.cancel()
	ss := c.ss
	ss.mu.Lock()
	delete(ss.calls, c.id)
	abandoned := c.abandoned
	ss.mu.Unlock()
	if !abandoned {
		h := ReplyHeader{ID: c.id}
		if err != nil {
			h.Status, h.Code, h.Message = grpcx.StatusParts(err)
			resp = nil
		}
		if serr := ss.send(s.wire.NewReply(h, resp)); serr != nil {
			s.opts.Log.Debug().Err(serr).Uint64("call", c.id).Str("method", s.opts.Method).Msg("call answer not sent: the stream ended")
		}
	}
	ss.running.Done()
}
