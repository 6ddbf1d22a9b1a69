// Package lbpick asks lbclient which loaders to use. Picks travel over a few long-lived
// Lb.PickStream streams, which saves a gRPC call's setup (a new HTTP/2 stream, a server
// goroutine) per pick; while no stream is open — at start, after a break, against an
// lbclient without PickStream — each pick falls back to the unary Lb.Pick. With
// Options.LeaseMax, a busy service's picks without exclude are answered from picks that
// lbclient granted in advance (Lb.Lease), leased in the background, so most picks make
// no call at all.
//
//	c := lbpick.New(cc, lbpick.Options{Streams: 4, LeaseMax: 64, Log: log})
//	defer c.Close()
//	addrs, err := c.Pick(ctx, "echo", 3, nil, uid)
package lbpick

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	lbpb "github.com/athenaserving/asf/libs/proto/lb/v1"
	"github.com/athenaserving/asf/libs/tracing"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Options tunes a Client; zero fields take the defaults noted.
type Options struct {
	// Streams is how many PickStreams to keep open; 0 means unary Pick only. Each new
	// stream goes to the next lbclient replica of a round-robin connection.
	Streams int
	// RetryMin and RetryMax bound the wait before a broken stream is opened again
	// (defaults 50 ms and 1 s).
	RetryMin, RetryMax time.Duration
	// UnimplementedRetry is the wait after an lbclient answered that it has no
	// PickStream (default 30 s): meanwhile picks are unary.
	UnimplementedRetry time.Duration
	// MaxAge is how long a stream serves before it is closed (after its last answer) and
	// opened again (default 5 s; each stream's age is drawn between MaxAge/2 and MaxAge,
	// so the streams retire one at a time), so that streams spread again over lbclient
	// replicas that came back or were added since they opened. A stream costs one HTTP/2
	// stream setup per retirement.
	MaxAge time.Duration
	// OnDropped, when set, is told of every loader lbclient drops from rotation while it
	// was live (Lb.WatchDropped: silent for stale-after, or evicted by the registry), so
	// the caller can give up the work it has in flight there. The Client keeps one
	// WatchDropped stream open for it, reopened like a PickStream; drops that happen while
	// it is broken are not heard of. It runs on the stream's goroutine and must not block.
	OnDropped func(service, addr, reason string)
	// LeaseMax is the most picks one lease asks lbclient for (Lb.Lease); 0 turns leases
	// off: every pick asks lbclient. A service is leased for once its pick rate fills
	// two picks in LeaseWindow; the lease is sized for LeaseWindow of its picks, so the
	// picks of an idle or quiet service go to lbclient one by one, as without leases.
	LeaseMax int
	// LeaseWindow is the stretch of a service's recent picks a lease is sized for
	// (default 10 ms; at most half the validity lbclient grants).
	LeaseWindow time.Duration
	// Log is the client's logger.
	Log zerolog.Logger

	now func() time.Time // the clock of leases (time.Now; a fake one in tests)
}

// Client picks loaders. It is safe for concurrent use; Close stops its streams.
type Client struct {
	c       lbpb.LbClient
	opts    Options
	log     zerolog.Logger
	streams []*pickStream
	next    atomic.Uint64
	ids     atomic.Uint64
	// warnedOld is set once an lbclient without PickStream was logged at info, and
	// warnedNoLease once one that grants no lease was.
	warnedOld     atomic.Bool
	warnedNoLease atomic.Bool
	leases        sync.Map // service → *leases
	ctx           context.Context
	cancel        context.CancelFunc
	wg            sync.WaitGroup
	smu           sync.Mutex // guards closing: no goroutine starts once Close waits
	closing       bool
}

// New returns a Client over cc and starts opening its streams in the background.
func New(cc grpc.ClientConnInterface, opts Options) *Client {
	if opts.RetryMin <= 0 {
		opts.RetryMin = 50 * time.Millisecond
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = time.Second
	}
	if opts.UnimplementedRetry <= 0 {
		opts.UnimplementedRetry = 30 * time.Second
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 5 * time.Second
	}
	if opts.LeaseWindow <= 0 {
		opts.LeaseWindow = defaultLeaseWindow
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	c := &Client{c: lbpb.NewLbClient(cc), opts: opts, log: opts.Log}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	for i := range max(opts.Streams, 0) {
		s := &pickStream{c: c, idx: i, pending: map[uint64]chan result{}}
		c.streams = append(c.streams, s)
		c.wg.Add(1)
		go s.run()
	}
	if opts.OnDropped != nil {
		c.wg.Add(1)
		go c.watchDropped()
	}
	return c
}

// watchDropped keeps a WatchDropped stream open until the client closes, passing every
// drop to Options.OnDropped; a broken stream is opened again after RetryMin doubling to
// RetryMax (UnimplementedRetry against an lbclient without WatchDropped).
func (c *Client) watchDropped() {
	defer c.wg.Done()
	backoff := c.opts.RetryMin
	for c.ctx.Err() == nil {
		began := time.Now()
		err := c.serveDropped()
		if c.ctx.Err() != nil {
			return
		}
		if time.Since(began) > c.opts.RetryMax {
			backoff = c.opts.RetryMin // it served a while: start over
		}
		wait := backoff
		if status.Code(err) == codes.Unimplemented {
			wait = c.opts.UnimplementedRetry
		}
		c.log.Debug().Err(err).Dur("retry_in", wait).Msg("dropped-loader stream ended")
		backoff = min(2*backoff, c.opts.RetryMax)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			return
		}
	}
}

func (c *Client) serveDropped() error {
	st, err := c.c.WatchDropped(c.ctx, &lbpb.WatchDroppedRequest{})
	if err != nil {
		return err
	}
	for {
		d, err := st.Recv()
		if err != nil {
			return err
		}
		c.opts.OnDropped(d.GetService(), d.GetAddr(), d.GetReason())
	}
}

// Close stops every stream and lease call and waits for their goroutines; picks in
// flight on a stream finish over unary Pick.
func (c *Client) Close() error {
	c.smu.Lock()
	c.closing = true
	c.smu.Unlock()
	c.cancel()
	c.wg.Wait()
	return nil
}

// Open is how many streams are open now.
func (c *Client) Open() int {
	n := 0
	for _, s := range c.streams {
		s.mu.Lock()
		if s.st != nil {
			n++
		}
		s.mu.Unlock()
	}
	return n
}

// Pick returns up to n loader addresses for service, best first, never one in exclude.
// Errors carry lbclient's code (10404 unknown service, 10223 none live, 10222 unreachable).
// With leases on, a pick without exclude may be answered from a lease (never one of a
// service whose strategy uses key: lbclient refuses to lease those).
func (c *Client) Pick(ctx context.Context, service string, n int, exclude []string, key string) ([]string, error) {
	if c.opts.LeaseMax > 0 && len(exclude) == 0 {
		if addrs, ok := c.leased(service, n); ok {
			return addrs, nil
		}
	}
	// A traced pick carries its span's context to lbclient in the message: the streams'
	// own gRPC metadata belongs to no request. Untraced, the field stays nil (no cost).
	req := &lbpb.PickRequest{Service: service, N: int32(n), Exclude: exclude, Key: key, TraceContext: tracing.InjectSampled(ctx)}
	if r, ok := c.onStream(ctx, &lbpb.PickStreamRequest{Pick: req}); ok {
		return r.addrs, r.err
	}
	resp, err := c.c.Pick(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("lb pick: %w", grpcx.FromStatus(err))
	}
	return resp.GetAddrs(), nil
}

// maxPending bounds the picks sent on one stream and not answered yet (whether or not
// their callers still wait). Past it picks go over unary Pick: the stream's messages then
// never fill HTTP/2's 64 KiB window, so a Send (made under the stream's mutex, where a
// caller's context cannot reach it) never blocks on a stalled lbclient.
const maxPending = 256

type result struct {
	addrs []string
	lease *lbpb.LeaseResponse // the answer to a lease (nil from an lbclient without leases)
	err   error
	lost  bool // the stream broke before the answer: ask again over unary
}

// onStream sends req (a pick or a lease) on the next stream and waits for its answer. ok
// is false when no stream is open, or the one tried broke first: the caller then asks
// over a unary call.
func (c *Client) onStream(ctx context.Context, req *lbpb.PickStreamRequest) (result, bool) {
	if len(c.streams) == 0 {
		return result{}, false
	}
	req.Id = c.ids.Add(1)
	return c.streams[c.next.Add(1)%uint64(len(c.streams))].call(ctx, req)
}

// pickStream is one PickStream, opened again by run whenever it breaks. mu guards st and
// pending; a Send happens under mu, since a gRPC stream allows one sender at a time.
type pickStream struct {
	c       *Client
	idx     int
	mu      sync.Mutex
	st      lbpb.Lb_PickStreamClient // nil while not open
	pending map[uint64]chan result
	sent    int // picks sent on st and not answered yet
}

// call sends req on the stream and waits for its answer. ok is false when the stream is
// not open or broke first.
func (s *pickStream) call(ctx context.Context, req *lbpb.PickStreamRequest) (r result, ok bool) {
	ch := make(chan result, 1)
	s.mu.Lock()
	st := s.st
	if st == nil || s.sent >= maxPending {
		s.mu.Unlock()
		return result{}, false
	}
	s.pending[req.GetId()] = ch
	if serr := st.Send(req); serr != nil {
		// The receiver sees the break too and reopens the stream.
		delete(s.pending, req.GetId())
		s.mu.Unlock()
		return result{}, false
	}
	s.sent++
	s.mu.Unlock()
	select {
	case r := <-ch:
		return r, !r.lost
	case <-ctx.Done():
		s.mu.Lock()
		delete(s.pending, req.GetId())
		s.mu.Unlock()
		return result{err: fmt.Errorf("lb pick: %w", grpcx.FromStatus(status.FromContextError(ctx.Err()).Err()))}, true
	}
}

// run keeps the stream open until the client closes: open, receive answers until the
// stream breaks, fail what was pending over to unary, wait, open again.
func (s *pickStream) run() {
	defer s.c.wg.Done()
	backoff := s.c.opts.RetryMin
	for s.c.ctx.Err() == nil {
		began := time.Now()
		err := s.serve()
		if s.c.ctx.Err() != nil {
			return
		}
		if errors.Is(err, io.EOF) && time.Since(began) >= s.c.opts.MaxAge {
			backoff = s.c.opts.RetryMin
			continue // closed at its age, every answer in: open the next one now
		}
		// Any other end, an early clean one included (an lbclient shutting down ends its
		// streams), waits before the next open.
		wait := backoff
		if status.Code(err) == codes.Unimplemented {
			wait = s.c.opts.UnimplementedRetry
			ev := s.c.log.Debug()
			if s.c.warnedOld.CompareAndSwap(false, true) {
				ev = s.c.log.Info() // once per client; the other streams and retries at debug
			}
			ev.Int("stream", s.idx).Dur("retry_in", wait).Msg("lbclient has no PickStream: picking over unary calls")
		} else {
			if time.Since(began) > s.c.opts.RetryMax {
				backoff = s.c.opts.RetryMin // it served a while: start over
				wait = backoff
			}
			s.c.log.Debug().Int("stream", s.idx).Err(err).Dur("retry_in", wait).Msg("pick stream ended")
			backoff = min(2*backoff, s.c.opts.RetryMax)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.c.ctx.Done():
			t.Stop()
			return
		}
	}
}

// serve opens the stream and delivers its answers until it breaks, or until MaxAge
// retires it: no new pick is sent on it, its side is closed, lbclient answers what it
// had and ends the stream, and serve returns io.EOF.
func (s *pickStream) serve() error {
	st, err := s.c.c.PickStream(s.c.ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.st, s.sent = st, 0
	s.mu.Unlock()
	age := s.c.opts.MaxAge/2 + rand.N(s.c.opts.MaxAge/2+1)
	retire := time.AfterFunc(age, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.st == st {
			s.st = nil
			_ = st.CloseSend() // under mu: never beside a Send
		}
	})
	defer retire.Stop()
	for {
		resp, err := st.Recv()
		if err != nil {
			s.mu.Lock()
			s.st = nil
			for id, ch := range s.pending {
				ch <- result{lost: true}
				delete(s.pending, id)
			}
			s.mu.Unlock()
			return err
		}
		s.mu.Lock()
		ch, ok := s.pending[resp.GetId()]
		delete(s.pending, resp.GetId())
		if s.st == st {
			s.sent--
		}
		s.mu.Unlock()
		if !ok {
			continue // its caller gave up
		}
		r := result{addrs: resp.GetAddrs(), lease: resp.GetLease()}
		if code := resp.GetCode(); code != 0 {
			r.err = fmt.Errorf("lb pick: %w", aserr.New(int(code), resp.GetMessage()))
		}
		ch <- r
	}
}
