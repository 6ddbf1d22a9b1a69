package rawstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/localsock"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
)

// FallbackFor is how long a Dialer leaves an address whose dial failed alone before it
// tries it again (its Opener meanwhile opens gRPC streams when no address is left).
const FallbackFor = 30 * time.Second

// Dialer opens streams to a server's Listener. It is safe for concurrent use.
type Dialer struct {
	// Target is the server: host:port, a comma-separated list of them, or a gRPC dns:///
	// target. Each Dial resolves it and takes the next address (round robin over the
	// replicas a name resolves to, as grpcx.Dial's connections do).
	Target string
	// TLS is the client's TLS config (tlsx's ClientConfig); nil dials plaintext. Dial asks
	// for Proto over ALPN.
	TLS *tls.Config
	// MaxRecv bounds a message the client receives (default DefaultMaxRecv).
	MaxRecv int
	// Timeout bounds the connection, its handshake and the server's hello (default
	// grpcx.ConnectTimeout).
	Timeout time.Duration
	// Sockets is the directory co-located servers serve Unix sockets in (libs/localsock):
	// an address served there is dialed over its socket. Empty: TCP only.
	Sockets string
	// Log is where Opener logs a dial that failed (at debug; at info the first time).
	Log zerolog.Logger

	next   atomic.Uint64
	mu     sync.Mutex
	down   map[string]time.Time // addresses whose dial failed, until when they are left alone
	warned bool
}

// Dial opens a stream of method ("/asf.loader.v1.Loader/OnceStream") on the next address
// of Target; it returns once the server accepted it. An address whose dial failed is
// skipped for FallbackFor (a server without raw streams, a refusal, a frozen or dead
// process); Dial fails when every address is. ctx bounds the stream's life: when it is
// done the connection is closed.
func (d *Dialer) Dial(ctx context.Context, method string) (*Conn, error) {
	addrs, err := d.resolve(ctx)
	if err != nil {
		return nil, err
	}
	start := d.next.Add(1)
	var errs []error
	for i := range addrs {
		addr := addrs[(start+uint64(i))%uint64(len(addrs))]
		if !d.usable(addr) {
			continue
		}
		c, err := d.dial(ctx, addr, method)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		d.failed(addr, method, err)
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("rawstream: every address of %s failed within %s", d.Target, FallbackFor)
	}
	return nil, errors.Join(errs...)
}

// Dialable reports whether a Dialer can reach target: host:port entries or a dns:///
// target (not another gRPC resolver's scheme).
func Dialable(target string) bool {
	t := strings.TrimPrefix(target, "dns:///")
	if strings.Contains(t, "://") || strings.HasPrefix(t, "unix:") {
		return false
	}
	for _, hp := range grpcx.SplitAddrs(t) {
		if _, _, err := net.SplitHostPort(hp); err != nil {
			return false
		}
	}
	return t != ""
}

// resolve returns Target's addresses, names resolved.
func (d *Dialer) resolve(ctx context.Context) ([]string, error) {
	target := strings.TrimPrefix(d.Target, "dns:///")
	var out []string
	for _, hp := range grpcx.SplitAddrs(target) {
		host, port, err := net.SplitHostPort(hp)
		if err != nil {
			return nil, fmt.Errorf("rawstream: target %q: %w", d.Target, err)
		}
		if net.ParseIP(host) != nil {
			out = append(out, hp)
			continue
		}
		ips, err := net.DefaultResolver.LookupHost(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("rawstream: resolve %s: %w", host, err)
		}
		for _, ip := range ips {
			out = append(out, net.JoinHostPort(ip, port))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("rawstream: target %q has no address", d.Target)
	}
	return out, nil
}

func (d *Dialer) dial(ctx context.Context, addr, method string) (*Conn, error) {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = grpcx.ConnectTimeout
	}
	deadline := time.Now().Add(timeout)
	nd := net.Dialer{Deadline: deadline, KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: grpcx.KeepaliveTime, Interval: grpcx.KeepaliveTimeout, Count: 3}}
	ld := localsock.Dialer{Dir: d.Sockets, TCP: nd}
	nc, err := ld.DialContext(ctx, addr)
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(deadline)
	if d.TLS != nil {
		tc := tls.Client(nc, tuned(d.TLS, Proto))
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, fmt.Errorf("rawstream: %s: TLS: %w", addr, err)
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != Proto {
			_ = nc.Close()
			return nil, fmt.Errorf("rawstream: %s does not serve streams (ALPN %q)", addr, p)
		}
		nc = tc
	}
	hello := append([]byte(Magic), appendFrame(nil, frameHello, len(method))...)
	if _, err := nc.Write(append(hello, method...)); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("rawstream: %s: hello: %w", addr, err)
	}
	br := bufio.NewReaderSize(nc, readBuffer)
	fr := frameReader{r: br}
	typ, p, err := fr.next(maxHello)
	switch {
	case err != nil:
		_ = nc.Close()
		return nil, fmt.Errorf("rawstream: %s: no hello (a server without streams?): %w", addr, err)
	case typ == frameEnd:
		err := endError(p)
		_ = nc.Close()
		if err == nil {
			err = errors.New("stream ended before it began")
		}
		return nil, fmt.Errorf("rawstream: %s refused the stream: %w", addr, err)
	case typ != frameHello || len(p) != 0:
		_ = nc.Close()
		return nil, fmt.Errorf("rawstream: %s: %w: hello", addr, errFrame)
	}
	_ = nc.SetDeadline(time.Time{})
	maxRecv := d.MaxRecv
	if maxRecv <= 0 {
		maxRecv = DefaultMaxRecv
	}
	c := newConn(ctx, nc, br, method, maxRecv, false)
	context.AfterFunc(c.ctx, c.Close) // ctx done: the connection closes (Close cancels c.ctx too)
	return c, nil
}

// Opener returns a callmux opener of method's streams: rawstream streams from d, or,
// when d is nil or cannot open one (see Dial), the gRPC stream that fallback opens.
func Opener[C, R any](d *Dialer, method string, fallback func(context.Context, ...grpc.CallOption) (grpc.BidiStreamingClient[C, R], error)) func(context.Context, ...grpc.CallOption) (grpc.BidiStreamingClient[C, R], error) {
	if d == nil {
		return fallback
	}
	return func(ctx context.Context, opts ...grpc.CallOption) (grpc.BidiStreamingClient[C, R], error) {
		if c, err := d.Dial(ctx, method); err == nil {
			return ClientStream[C, R](c), nil
		}
		return fallback(ctx, opts...)
	}
}

func (d *Dialer) usable(addr string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return time.Now().After(d.down[addr])
}

// failed leaves addr alone for FallbackFor; the first failure is logged at info, the
// later ones at debug.
func (d *Dialer) failed(addr, method string, err error) {
	d.mu.Lock()
	if d.down == nil {
		d.down = map[string]time.Time{}
	}
	now := time.Now()
	for a, t := range d.down { // forget the addresses whose time is over
		if now.After(t) {
			delete(d.down, a)
		}
	}
	d.down[addr] = now.Add(FallbackFor)
	first := !d.warned
	d.warned = true
	d.mu.Unlock()
	ev := d.Log.Debug()
	if first {
		ev = d.Log.Info()
	}
	ev.Err(err).Str("addr", addr).Str("method", method).Dur("for", FallbackFor).Msg("raw stream not opened: gRPC streams while the address is left alone")
}
