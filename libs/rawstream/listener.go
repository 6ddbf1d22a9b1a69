package rawstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/rs/zerolog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// DefaultMaxRecv is the largest message a stream receives unless told otherwise.
const DefaultMaxRecv = 4 << 20

// ListenOptions configures a Listener.
type ListenOptions struct {
	// TLS is the server's TLS config (mutual TLS on the internal plane: tlsx's
	// ServerConfig); nil serves plaintext. Its NextProtos are replaced by "h2" and Proto.
	TLS *tls.Config
	// HandshakeTimeout bounds a new connection's TLS handshake and, for a stream, its hello
	// (default 10 s).
	HandshakeTimeout time.Duration
	// MaxRecv bounds a message a stream handler receives (default DefaultMaxRecv).
	MaxRecv int
	// Metrics counts the streams (nil: NewMetrics("rawstream", nil), not registered).
	Metrics *Metrics
	// Log is where refused and failed streams are logged (at debug: the client logs what it
	// makes of them).
	Log zerolog.Logger
}

// Handler serves one stream; its error is the status the stream ends with.
type Handler func(c *Conn) error

type route struct {
	check func(ctx context.Context, method string) error // grpcx.CallerCheck
	h     Handler
}

// Listener splits a listening port between a gRPC server (GRPC) and stream handlers
// (Handle). Its goroutines (the accept loop, one per connection being sorted, one per
// stream) are its own; Shutdown stops them.
type Listener struct {
	base   net.Listener
	opts   ListenOptions
	grpc   *grpcListener
	ctx    context.Context // the streams' contexts derive from it; cancelled by Shutdown's end
	cancel context.CancelFunc

	mu       sync.Mutex
	routes   map[string]route
	sorting  map[net.Conn]struct{} // accepted, not handed to gRPC nor serving a stream yet
	streams  map[*Conn]struct{}
	closed   bool
	closeErr error
	done     chan struct{} // closed by Close
	wg       sync.WaitGroup
}

// Listen starts splitting ln's connections. Serve a gRPC server on GRPC() and register
// the stream handlers (before clients come: a stream for a method not registered yet is
// refused as Unimplemented).
func Listen(ln net.Listener, opts ListenOptions) *Listener {
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 10 * time.Second
	}
	if opts.MaxRecv <= 0 {
		opts.MaxRecv = DefaultMaxRecv
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics("rawstream", nil)
	}
	if opts.TLS != nil {
		opts.TLS = withProtos(opts.TLS, "h2", Proto)
	}
	l := &Listener{base: ln, opts: opts, routes: map[string]route{}, sorting: map[net.Conn]struct{}{}, streams: map[*Conn]struct{}{}, done: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.grpc = &grpcListener{l: l, conns: make(chan net.Conn)}
	l.wg.Add(1)
	go l.accept()
	return l
}

// withProtos returns cfg offering protos over ALPN, also from the config its
// GetConfigForClient returns, with full-size TLS records from the start (see tuned).
func withProtos(cfg *tls.Config, protos ...string) *tls.Config {
	c := tuned(cfg, protos...)
	if get := c.GetConfigForClient; get != nil {
		c.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			sc, err := get(h)
			if err != nil || sc == nil {
				return sc, err
			}
			return tuned(sc, protos...), nil
		}
	}
	return c
}

// tuned returns a copy of cfg offering protos, without dynamic record sizing: crypto/tls
// otherwise starts every connection with records of one TCP segment, growing only after
// 128 KiB or a thousand records, and writes each record with a system call of its own —
// a stream connection lives seconds (webgate's retire after 0.5–1 s) and its writes
// carry several messages at once, so it would spend its life splitting them.
func tuned(cfg *tls.Config, protos ...string) *tls.Config {
	c := cfg.Clone()
	c.NextProtos = protos
	c.DynamicRecordSizingDisabled = true
	return c
}

// Handle serves the streams of method (a full gRPC method name, which clients dial) with
// h, for callers whose certificate identity is of one of services (or
// grpcx.ToolIdentity); on a plaintext Listener every caller is let through.
func (l *Listener) Handle(method string, services []string, h Handler) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.routes[method] = route{check: grpcx.CallerCheck(services...), h: h}
}

// GRPC is the listener of the gRPC server: the connections that are not streams.
func (l *Listener) GRPC() net.Listener { return l.grpc }

// Addr is the listening address.
func (l *Listener) Addr() net.Addr { return l.base.Addr() }

// Streams is how many streams are being served.
func (l *Listener) Streams() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.streams)
}

// Close stops accepting connections (the gRPC server's Stop and GracefulStop call it
// through GRPC) and closes the ones not sorted yet; the streams being served go on.
func (l *Listener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.done)
		l.closeErr = l.base.Close()
		for nc := range l.sorting {
			_ = nc.Close()
		}
	}
	return l.closeErr
}

// Shutdown closes the listener, waits until the streams end (their handlers return: a
// callmux server ends its streams when drained) or ctx is done, then ends the ones left
// and waits for every goroutine of the Listener.
func (l *Listener) Shutdown(ctx context.Context) {
	_ = l.Close()
	idle := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(idle)
	}()
	select {
	case <-idle:
		return
	case <-ctx.Done():
	}
	l.cancel()
	l.mu.Lock()
	for c := range l.streams {
		c.Close()
	}
	l.mu.Unlock()
	<-idle
}

// Stop closes the listener and ends every stream at once (a crash-like stop), then waits
// for the Listener's goroutines.
func (l *Listener) Stop() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l.Shutdown(ctx)
}

func (l *Listener) accept() {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		nc, err := l.base.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() { // as net/http: wait and go on
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				l.opts.Log.Warn().Err(err).Dur("retry_in", backoff).Msg("accept failed")
				select {
				case <-time.After(backoff):
				case <-l.done:
					return
				}
				continue
			}
			l.grpc.fail(err)
			return
		}
		backoff = 0
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = nc.Close()
			return
		}
		l.sorting[nc] = struct{}{}
		l.mu.Unlock()
		l.wg.Add(1)
		go l.sort(nc)
	}
}

// sort sends nc to the gRPC server or serves the stream it opens.
func (l *Listener) sort(nc net.Conn) {
	defer l.wg.Done()
	raw := nc
	defer l.sorted(raw) // done already unless it failed
	_ = nc.SetDeadline(time.Now().Add(l.opts.HandshakeTimeout))
	var tlsInfo credentials.AuthInfo // nil: plaintext
	if l.opts.TLS != nil {
		tc := tls.Server(nc, l.opts.TLS)
		if err := tc.Handshake(); err != nil {
			l.opts.Log.Debug().Err(err).Str("peer", nc.RemoteAddr().String()).Msg("internal TLS handshake failed")
			_ = nc.Close()
			return
		}
		st := tc.ConnectionState()
		if st.NegotiatedProtocol != Proto {
			_ = nc.SetDeadline(time.Time{})
			l.sorted(raw)
			l.grpc.hand(tc)
			return
		}
		tlsInfo = tlsInfoOf(st)
		nc = tc
	}
	br := bufio.NewReaderSize(nc, readBuffer)
	if tlsInfo == nil { // plaintext: the first bytes tell
		head, err := br.Peek(len(Magic))
		if string(head) != Magic {
			if err != nil && len(head) == 0 {
				_ = nc.Close()
				return
			}
			_ = nc.SetDeadline(time.Time{})
			l.sorted(raw)
			l.grpc.hand(&bufferedConn{Conn: nc, r: br})
			return
		}
	}
	l.serve(raw, nc, br, tlsInfo)
}

// sorted forgets raw as a connection being sorted: it is the gRPC server's now, or a
// stream's.
func (l *Listener) sorted(raw net.Conn) {
	l.mu.Lock()
	delete(l.sorting, raw)
	l.mu.Unlock()
}

// serve reads a stream's hello, checks it and runs its handler.
func (l *Listener) serve(raw, nc net.Conn, br *bufio.Reader, auth credentials.AuthInfo) {
	log := l.opts.Log.With().Str("peer", nc.RemoteAddr().String()).Logger()
	method, err := readHello(br)
	if err != nil {
		l.opts.Metrics.failed.Inc()
		log.Debug().Err(err).Msg("stream hello refused")
		_ = nc.Close()
		return
	}
	ctx := peer.NewContext(l.ctx, &peer.Peer{Addr: nc.RemoteAddr(), LocalAddr: nc.LocalAddr(), AuthInfo: auth})
	c := newConn(ctx, nc, br, method, l.opts.MaxRecv, true)
	l.mu.Lock()
	r, ok := l.routes[method]
	closed := l.closed
	if ok && !closed {
		l.streams[c] = struct{}{}
		delete(l.sorting, raw)
	}
	l.mu.Unlock()
	var refuse error
	switch {
	case closed:
		refuse = status.Error(codes.Unavailable, "rawstream: server shutting down")
	case !ok:
		refuse = status.Errorf(codes.Unimplemented, "rawstream: unknown stream method %q", method)
	default:
		refuse = r.check(ctx, method) // the peer's certificate, as AllowCallers checks a gRPC call
	}
	if refuse != nil {
		l.opts.Metrics.refused.Inc()
		log.Debug().Err(refuse).Str("method", method).Msg("stream refused")
		if ok && !closed {
			l.forget(c)
		}
		c.end(refuse)
		return
	}
	_ = nc.SetDeadline(time.Time{})
	if err := c.sendBytes(frameHello, nil); err != nil {
		l.forget(c)
		c.Close()
		return
	}
	l.opts.Metrics.served.Inc()
	l.opts.Metrics.open.Inc()
	err = l.run(c, r.h)
	l.opts.Metrics.open.Dec()
	l.forget(c)
	c.end(err)
}

func (l *Listener) forget(c *Conn) {
	l.mu.Lock()
	delete(l.streams, c)
	l.mu.Unlock()
}

// run runs a handler; a panic is logged with its stack and ends the stream Internal, as
// grpcx's recovery does for a gRPC handler.
func (l *Listener) run(c *Conn, h Handler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			l.opts.Log.Error().Str("method", c.method).Interface("panic", r).Bytes("stack", debug.Stack()).Msg("stream handler panicked")
			err = grpcx.ToStatus(fmt.Errorf("%s: panic: %v: %w", c.method, r, aserr.ErrInternal))
		}
	}()
	return h(c)
}

// readHello reads a stream's magic bytes and hello frame: the method it asks for.
func readHello(br *bufio.Reader) (string, error) {
	head := make([]byte, len(Magic))
	if _, err := io.ReadFull(br, head); err != nil {
		return "", err
	}
	if string(head) != Magic {
		return "", fmt.Errorf("%w: no magic", errFrame)
	}
	fr := frameReader{r: br}
	typ, p, err := fr.next(maxHello)
	if err != nil {
		return "", err
	}
	if typ != frameHello || len(p) == 0 || p[0] != '/' {
		return "", fmt.Errorf("%w: hello", errFrame)
	}
	return string(p), nil
}

// grpcListener hands the gRPC server its connections.
type grpcListener struct {
	l     *Listener
	conns chan net.Conn
	mu    sync.Mutex
	err   error // the base listener's failure
}

func (g *grpcListener) hand(nc net.Conn) {
	select {
	case g.conns <- nc:
	case <-g.l.done:
		_ = nc.Close()
	}
}

func (g *grpcListener) fail(err error) {
	g.mu.Lock()
	g.err = err
	g.mu.Unlock()
	_ = g.l.Close()
}

func (g *grpcListener) Accept() (net.Conn, error) {
	select {
	case nc := <-g.conns:
		return nc, nil
	case <-g.l.done:
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.err != nil {
			return nil, g.err
		}
		return nil, net.ErrClosed
	}
}

func (g *grpcListener) Close() error   { return g.l.Close() }
func (g *grpcListener) Addr() net.Addr { return g.l.Addr() }

// bufferedConn is a plaintext connection whose first bytes were read ahead.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

// Read reads what was read ahead first, then from the connection itself.
func (c *bufferedConn) Read(p []byte) (int, error) {
	if c.r.Buffered() > 0 {
		return c.r.Read(p)
	}
	return c.Conn.Read(p)
}
