package callmux

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/rawstream"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Options tunes a Client; zero fields take the defaults noted.
type Options struct {
	// Streams is how many streams to keep open; 0 means the unary RPC only. Each new
	// stream goes to the next replica of a round-robin connection.
	Streams int
	// Method is the full name of the unary RPC the calls stand for
	// ("/asf.loader.v1.Loader/Once"): the name of their client spans.
	Method string
	// Tracer traces the calls sent on streams (nil: tracing off). Calls sent over the
	// unary RPC are traced by the connection's own interceptors (grpcx.TraceDial).
	Tracer *grpcx.CallTracer
	// MaxAge is how long a stream takes new calls before it is retired and a new one
	// opened (default 5 s; each stream's age is drawn between MaxAge/2 and MaxAge, so the
	// streams retire one at a time), so that streams spread again over the replicas of a
	// round-robin connection that came back or were added since they opened. A retired
	// stream ends once its calls are answered. A stream costs one HTTP/2 stream setup per
	// retirement.
	MaxAge time.Duration
	// RetryMin and RetryMax bound the wait before a stream that broke, or that its server
	// drained, is opened again (defaults 50 ms and 1 s).
	RetryMin, RetryMax time.Duration
	// UnimplementedRetry is the wait after a server answered that it has no stream RPC
	// (default 30 s): meanwhile calls are unary.
	UnimplementedRetry time.Duration
	// MaxPending bounds the calls sent on one stream and not answered yet (default 256);
	// past it a call goes to the next stream, or over the unary RPC. A stream's messages
	// then stay well within HTTP/2's flow-control window, so a Send (made under the
	// stream's mutex, where a caller's context cannot reach it) does not wait for a slow
	// server.
	MaxPending int
	// MaxCallBytes is the largest request (ClientWire.Size) sent on a stream (default
	// 64 KiB; negative: no bound); a larger one goes over the unary RPC, so that moving it
	// never holds up the small calls that share the stream.
	MaxCallBytes int
	// Direct, when set, opens the streams as rawstream connections of their own instead
	// of gRPC streams (each falls back to a gRPC stream while Direct cannot open one: see
	// rawstream.Opener); StreamMethod names them (muxwire sets it).
	Direct       *rawstream.Dialer
	StreamMethod string
	// Log is the client's logger.
	Log zerolog.Logger
}

func (o *Options) defaults() {
	if o.MaxAge <= 0 {
		o.MaxAge = 5 * time.Second
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 50 * time.Millisecond
	}
	if o.RetryMax <= 0 {
		o.RetryMax = time.Second
	}
	if o.UnimplementedRetry <= 0 {
		o.UnimplementedRetry = 30 * time.Second
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 256
	}
	if o.MaxCallBytes == 0 {
		o.MaxCallBytes = 64 << 10
	}
}

// Opener opens one stream: a generated client's stream method (loaderpb.LoaderClient.OnceStream).
type Opener[C, R any] func(ctx context.Context, opts ...grpc.CallOption) (grpc.BidiStreamingClient[C, R], error)

// Unary is the unary RPC the calls stand for (loaderpb.LoaderClient.Once).
type Unary[Req, Resp any] func(ctx context.Context, req *Req, opts ...grpc.CallOption) (*Resp, error)

// Client sends calls over a few long-lived streams. It is safe for concurrent use; Close
// stops its streams.
type Client[Req, Resp, C, R any] struct {
	open  Opener[C, R]
	unary Unary[Req, Resp]
	wire  ClientWire[Req, Resp, C, R]
	opts  Options
	slots []*slot[Req, Resp, C, R]
	next  atomic.Uint64
	ids   atomic.Uint64
	// warnedOld is set once a server without the stream RPC was logged at info.
	warnedOld atomic.Bool
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup // the slots, the streams' receivers, the cancel senders
}

// NewClient returns a Client that opens its streams with open and sends calls it cannot
// put on a stream with unary; it starts opening the streams in the background.
func NewClient[Req, Resp, C, R any](open Opener[C, R], unary Unary[Req, Resp], wire ClientWire[Req, Resp, C, R], opts Options) *Client[Req, Resp, C, R] {
	opts.defaults()
	if opts.Direct != nil {
		open = rawstream.Opener(opts.Direct, opts.StreamMethod, open)
	}
	c := &Client[Req, Resp, C, R]{open: open, unary: unary, wire: wire, opts: opts}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	for i := range max(opts.Streams, 0) {
		sl := &slot[Req, Resp, C, R]{c: c, idx: i, wake: make(chan struct{}, 1)}
		c.slots = append(c.slots, sl)
		c.wg.Add(1)
		go sl.run()
	}
	return c
}

// Close stops every stream and waits for their goroutines. Calls still waiting on a
// stream fail with its status (Canceled), as unary calls on a closed connection do.
func (c *Client[Req, Resp, C, R]) Close() error {
	c.cancel()
	c.wg.Wait()
	return nil
}

// Open is how many streams take calls now.
func (c *Client[Req, Resp, C, R]) Open() int {
	n := 0
	for _, sl := range c.slots {
		if s := sl.cur.Load(); s != nil && s.sendable.Load() {
			n++
		}
	}
	return n
}

// outcome is how a call sent on a stream ended.
type outcome[Resp any] struct {
	resp   *Resp
	err    error
	notRun bool // never run (drained, or the stream ended before the server read it): send again
}

// Call sends req on an open stream and returns its response or the status error the unary
// RPC would have returned; without an open stream (or for a request over MaxCallBytes) it
// calls the unary RPC. When ctx ends first it returns ctx's status (Canceled or
// DeadlineExceeded) at once, and the server is told to cancel the call.
func (c *Client[Req, Resp, C, R]) Call(ctx context.Context, req *Req) (*Resp, error) {
	if len(c.slots) == 0 || (c.opts.MaxCallBytes > 0 && c.wire.Size != nil && c.wire.Size(req) > c.opts.MaxCallBytes) {
		return c.unary(ctx, req)
	}
	first := c.next.Add(1)
	s := c.pick(first)
	if s == nil {
		c.wake()
		return c.unary(ctx, req)
	}
	if err := ctx.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	h := CallHeader{ID: c.ids.Add(1)}
	if dl, ok := ctx.Deadline(); ok {
		h.Timeout = max(time.Until(dl), 1) // > 0: a deadline, however close
	}
	// A call of a sampled trace gets its client span here; if the call then goes over the
	// unary RPC after all, the span is left unended (so never exported) and the unary
	// call's interceptor traces it instead.
	tctx, span, sc := c.opts.Tracer.Start(ctx, c.opts.Method)
	h.Trace = sc
	msg := c.wire.NewCall(h, req)
	ch := make(chan outcome[Resp], 1)
	sent := false
	for i := uint64(0); i < uint64(len(c.slots)) && !sent; i++ {
		if i > 0 {
			s = c.pick(first + i)
		}
		if s == nil {
			continue
		}
		// On the first stream to the same server when there is one (see Peer).
		via := s
		if l := c.leader(s); l != s {
			if sent = l.send(h.ID, msg, ch); sent {
				s = l
			} else {
				ch = make(chan outcome[Resp], 1) // a broken stream may still answer the old one
			}
		}
		if !sent {
			if sent = s.send(h.ID, msg, ch); !sent {
				ch = make(chan outcome[Resp], 1)
			}
		}
		if sent && via != s && !via.used.Load() {
			via.used.Store(true) // its slot stays open: it keeps its server's share of the calls
		}
	}
	if !sent {
		c.wake()
		return c.unary(ctx, req)
	}
	if !s.used.Load() {
		s.used.Store(true)
	}
	select {
	case o := <-ch:
		if o.notRun {
			return c.unary(ctx, req)
		}
		c.opts.Tracer.End(span, o.err)
		return o.resp, o.err
	case <-tctx.Done(): // ctx's
		s.abandon(h.ID)
		err := status.FromContextError(ctx.Err()).Err()
		c.opts.Tracer.End(span, err)
		return nil, err
	}
}

// wake asks every slot parked for want of calls to open a stream: a call found none open.
func (c *Client[Req, Resp, C, R]) wake() {
	for _, sl := range c.slots {
		select {
		case sl.wake <- struct{}{}:
		default:
		}
	}
}

// pick returns the open stream of slot i (mod the slots), nil when it has none.
func (c *Client[Req, Resp, C, R]) pick(i uint64) *stream[Req, Resp, C, R] {
	s := c.slots[i%uint64(len(c.slots))].cur.Load()
	if s == nil || !s.sendable.Load() {
		return nil
	}
	return s
}

// Peer is what a stream whose messages are written to a connection of its own tells of
// its server (rawstream's: the server's address). A call picks its slot round robin, as
// it spreads the calls over the servers the streams reached, but then goes on the first
// open stream to the same server, when it can: the messages that share a connection go
// out in fewer writes, and a busy stream writes each of them in fewer system calls than
// several streams to the same server would. The other streams to that server stay open,
// kept by the calls that picked them, to take the calls the first one cannot.
type Peer interface{ Peer() string }

// leader returns the first open stream of the slots to s's server, else s.
func (c *Client[Req, Resp, C, R]) leader(s *stream[Req, Resp, C, R]) *stream[Req, Resp, C, R] {
	if s.peer == "" {
		return s
	}
	for _, sl := range c.slots {
		if t := sl.cur.Load(); t != nil && t.peer == s.peer && t.sendable.Load() {
			return t
		}
	}
	return s
}

// slot keeps one stream open: it opens one, replaces it when it retires at its age, and
// opens another after a wait when it breaks or is drained. A slot whose last stream took
// no call (or whose last open failed) opens the next one only once a call found no
// stream open (that call went unary): an idle client — a loader atom no longer picks, one
// that went away — holds no stream and does not dial it again and again.
type slot[Req, Resp, C, R any] struct {
	c    *Client[Req, Resp, C, R]
	idx  int
	cur  atomic.Pointer[stream[Req, Resp, C, R]] // the stream taking calls; nil while none
	used atomic.Bool                             // a call was sent on the current stream
	wake chan struct{}                           // a call found no stream open (1 buffered)
}

func (sl *slot[Req, Resp, C, R]) run() {
	c := sl.c
	defer c.wg.Done()
	backoff := c.opts.RetryMin
	for first := true; c.ctx.Err() == nil; first = false {
		if !first && !sl.used.Swap(false) {
			select { // idle: open again on demand
			case <-sl.wake:
			case <-c.ctx.Done():
				return
			}
		}
		began := time.Now()
		s, err := c.openStream()
		if err == nil {
			s.used = &sl.used
			sl.cur.Store(s)
			err = sl.serve(s)
			sl.cur.CompareAndSwap(s, nil)
			if err == nil {
				backoff = c.opts.RetryMin
				continue // retired at its age: open the next one now
			}
		}
		if c.ctx.Err() != nil {
			return
		}
		// A break, a drain, or a stream the server ended early waits before the next open.
		wait := backoff
		if status.Code(err) == codes.Unimplemented {
			wait = c.opts.UnimplementedRetry
			ev := c.opts.Log.Debug()
			if c.warnedOld.CompareAndSwap(false, true) {
				ev = c.opts.Log.Info() // once per client; the other streams and retries at debug
			}
			ev.Int("stream", sl.idx).Str("method", c.opts.Method).Dur("retry_in", wait).Msg("server has no call stream: calling over unary calls")
		} else {
			if time.Since(began) > c.opts.RetryMax {
				backoff = c.opts.RetryMin // it served a while: start over
				wait = backoff
			}
			c.opts.Log.Debug().Int("stream", sl.idx).Err(err).Dur("retry_in", wait).Msg("call stream ended")
			backoff = min(2*backoff, c.opts.RetryMax)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			return
		}
	}
}

// errDrained ends a slot's serve when the server drained its stream.
var errDrained = errors.New("call stream drained by the server")

// serve waits until s stops taking calls: nil when it retired at its age (it goes on
// answering its calls in the background), else why it stopped.
func (sl *slot[Req, Resp, C, R]) serve(s *stream[Req, Resp, C, R]) error {
	age := sl.c.opts.MaxAge/2 + rand.N(sl.c.opts.MaxAge/2+1)
	t := time.NewTimer(age)
	defer t.Stop()
	select {
	case <-t.C:
		s.retire()
		return nil
	case <-s.stopped:
		return s.why()
	case <-sl.c.ctx.Done():
		return sl.c.ctx.Err()
	}
}

// openStream opens a stream and waits for the server's headers, so that no call goes to
// a server without the stream RPC (its answer is a status and no headers).
func (c *Client[Req, Resp, C, R]) openStream() (*stream[Req, Resp, C, R], error) {
	ctx, cancel := context.WithCancel(c.ctx)
	st, err := c.open(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	if md, _ := st.Header(); md == nil {
		_, err := st.Recv() // the stream ended without headers: Recv has its status
		cancel()
		if err == nil || errors.Is(err, io.EOF) {
			err = errors.New("call stream ended before its headers")
		}
		return nil, err
	}
	s := &stream[Req, Resp, C, R]{c: c, st: st, end: cancel, pending: map[uint64]chan outcome[Resp]{}, stopped: make(chan struct{})}
	_, s.concurrent = st.(ConcurrentSender)
	if p, ok := st.(Peer); ok {
		s.peer = p.Peer()
	}
	s.sendable.Store(true)
	c.wg.Add(1)
	go s.receive()
	return s, nil
}

// stream is one open stream. mu guards pending, cancelling, retiring, closing, ended
// and stopErr; sendMu is held across every Send and CloseSend (a gRPC stream allows one
// sender at a time; a ConcurrentSender's Sends hold it shared) and guards shut. The
// receiver takes only mu, so it never waits behind a Send that waits for the server: the
// server may be waiting for the receiver to read. closeIfIdle takes sendMu under mu (mu
// first), when no Send can be under way.
type stream[Req, Resp, C, R any] struct {
	c          *Client[Req, Resp, C, R]
	st         grpc.BidiStreamingClient[C, R]
	end        context.CancelFunc // ends the stream's context
	used       *atomic.Bool       // its slot's: set by the first call sent on it
	sendable   atomic.Bool        // takes new calls (not retired, drained or broken)
	mu         sync.Mutex
	pending    map[uint64]chan outcome[Resp] // sent (or being sent), not answered
	cancelling int                           // cancels of abandoned calls not sent yet
	retiring   bool                          // no new calls: close the side once idle
	closing    bool                          // the side is closed, or about to be
	ended      bool                          // the receiver saw the stream end
	stopErr    error
	stopOnce   sync.Once
	stopped    chan struct{} // closed once the stream takes no new calls
	sendMu     sync.RWMutex
	concurrent bool   // st is a ConcurrentSender
	peer       string // st's server when st is a Peer (else "": none shares its connection)
	shut       bool   // CloseSend done
}

// send puts a call on the stream; false when the stream takes no calls (retired, drained,
// broken, or MaxPending reached), so the call was not sent and ch gets nothing from it.
func (s *stream[Req, Resp, C, R]) send(id uint64, msg *C, ch chan outcome[Resp]) bool {
	s.mu.Lock()
	if s.ended || s.retiring || s.closing || len(s.pending) >= s.c.opts.MaxPending {
		s.mu.Unlock()
		return false
	}
	s.pending[id] = ch // before the Send: the answer may come before Send returns
	s.mu.Unlock()
	err := s.sendMsg(msg)
	if err == nil {
		return true
	}
	// Not sent: the stream broke (its receiver sees it too and fails what is pending, ch
	// perhaps included: the caller then waits on a new channel).
	s.sendable.Store(false)
	s.mu.Lock()
	delete(s.pending, id)
	s.closeIfIdle()
	s.mu.Unlock()
	return false
}

// sendMsg sends msg unless the stream's side is closed.
func (s *stream[Req, Resp, C, R]) sendMsg(msg *C) error {
	if s.concurrent {
		s.sendMu.RLock()
		defer s.sendMu.RUnlock()
	} else {
		s.sendMu.Lock()
		defer s.sendMu.Unlock()
	}
	if s.shut {
		return errClosed
	}
	return s.st.Send(msg)
}

// ConcurrentSender is a stream whose Send may be called by several goroutines at once
// (a rawstream stream: its senders' messages go out in one write when they meet, which
// taking turns would prevent).
type ConcurrentSender interface{ ConcurrentSend() }

// errClosed is send's error for a stream whose side is closed.
var errClosed = errors.New("call stream closed")

// abandon forgets call id, whose caller gave up; if it was still unanswered, the server is
// told to cancel it (by another goroutine: the caller returns at once).
func (s *stream[Req, Resp, C, R]) abandon(id uint64) {
	s.mu.Lock()
	_, ok := s.pending[id]
	delete(s.pending, id)
	if ok {
		s.cancelling++
	}
	s.mu.Unlock()
	if !ok {
		return
	}
	s.c.wg.Add(1)
	go func() {
		defer s.c.wg.Done()
		msg := s.c.wire.NewCall(CallHeader{ID: id, Cancel: true}, nil)
		_ = s.sendMsg(msg) // a failure is the stream's break, which the receiver sees
		s.mu.Lock()
		s.cancelling--
		s.closeIfIdle()
		s.mu.Unlock()
	}()
}

// retire takes the stream out of use; once its calls are answered (or abandoned, their
// cancels sent) its side is closed, and the server then ends the stream.
func (s *stream[Req, Resp, C, R]) retire() {
	s.sendable.Store(false)
	s.mu.Lock()
	s.retiring = true
	s.closeIfIdle()
	s.mu.Unlock()
}

// closeIfIdle closes the side of a retiring stream with nothing left to send or wait
// for. mu is held; no Send is under way (none is pending or cancelling).
func (s *stream[Req, Resp, C, R]) closeIfIdle() {
	if s.retiring && !s.closing && !s.ended && len(s.pending) == 0 && s.cancelling == 0 {
		s.closing = true
		s.sendMu.Lock()
		s.shut = true
		_ = s.st.CloseSend()
		s.sendMu.Unlock()
	}
}

// stop marks the stream as taking no new calls, for reason err.
func (s *stream[Req, Resp, C, R]) stop(err error) {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopErr = err
		s.mu.Unlock()
		close(s.stopped)
	})
}

func (s *stream[Req, Resp, C, R]) why() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopErr
}

// receive delivers the stream's replies until it ends, then fails the calls still
// pending: with the stream's status when it broke (Unavailable, Canceled: the error a
// unary call would get), or as not run when the server ended it cleanly or has no stream
// RPC (it answers every call it read before it ends the stream, so an unanswered one was
// never read).
func (s *stream[Req, Resp, C, R]) receive() {
	defer s.c.wg.Done()
	defer s.end()
	for {
		r, err := s.st.Recv()
		if err != nil {
			s.finish(err)
			return
		}
		h, resp := s.c.wire.ReadReply(r)
		if h.Drain {
			s.retire()
			s.stop(errDrained)
		}
		if h.ID == 0 {
			continue
		}
		s.mu.Lock()
		ch, ok := s.pending[h.ID]
		delete(s.pending, h.ID)
		s.closeIfIdle()
		s.mu.Unlock()
		if !ok {
			continue // its caller gave up
		}
		switch {
		case h.NotRun:
			ch <- outcome[Resp]{notRun: true}
		case h.Status != codes.OK:
			ch <- outcome[Resp]{err: grpcx.StatusFromParts(h.Status, h.Code, h.Message)}
		default:
			ch <- outcome[Resp]{resp: resp}
		}
	}
}

func (s *stream[Req, Resp, C, R]) finish(err error) {
	s.sendable.Store(false)
	s.mu.Lock()
	s.ended = true
	pending := s.pending
	s.pending = map[uint64]chan outcome[Resp]{}
	s.mu.Unlock()
	notRun := errors.Is(err, io.EOF) || status.Code(err) == codes.Unimplemented
	for _, ch := range pending {
		if notRun {
			ch <- outcome[Resp]{notRun: true}
		} else {
			ch <- outcome[Resp]{err: err}
		}
	}
	s.stop(err)
}
