package lbpick

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	lbpb "github.com/athenaserving/asf/libs/proto/lb/v1"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeLB answers picks with "<service>:<n>" and counts how they arrived; service "none"
// fails with 10223. Without stream it has no PickStream, like an older lbclient.
type fakeLB struct {
	lbpb.UnimplementedLbServer
	unary, streamed atomic.Int64
}

func (f *fakeLB) answer(req *lbpb.PickRequest) ([]string, error) {
	if req.GetService() == "none" {
		return nil, aserr.New(aserr.ErrNoEngine.Code, "no live loader of none")
	}
	return []string{req.GetService() + ":" + req.GetKey()}, nil
}

func (f *fakeLB) Pick(_ context.Context, req *lbpb.PickRequest) (*lbpb.PickResponse, error) {
	f.unary.Add(1)
	addrs, err := f.answer(req)
	if err != nil {
		return nil, grpcx.ToStatus(err)
	}
	return &lbpb.PickResponse{Addrs: addrs}, nil
}

type streamingLB struct{ *fakeLB }

// PickStream answers every message as a pick, a lease included: an lbclient from before
// leases.
func (f streamingLB) PickStream(st lbpb.Lb_PickStreamServer) error { return f.serveStream(st, nil) }

// serveStream answers picks on st with answer, and leases with lease when it is set.
func (f *fakeLB) serveStream(st lbpb.Lb_PickStreamServer, lease func(*lbpb.LeaseRequest) (*lbpb.LeaseResponse, error)) error {
	for {
		req, err := st.Recv()
		if err != nil {
			return nil
		}
		resp := &lbpb.PickStreamResponse{Id: req.GetId()}
		if lr := req.GetLease(); lr != nil && lease != nil {
			if resp.Lease, err = lease(lr); resp.Lease == nil {
				resp.Lease = &lbpb.LeaseResponse{}
			}
		} else {
			f.streamed.Add(1)
			resp.Addrs, err = f.answer(req.GetPick())
		}
		if err != nil {
			resp.Code, resp.Message = int32(aserr.CodeOf(err)), aserr.MessageOf(err)
		}
		if err := st.Send(resp); err != nil {
			return err
		}
	}
}

// serve starts an Lb server on ln (a fresh 127.0.0.1:0 listener when nil).
func serve(t *testing.T, ln net.Listener, srv lbpb.LbServer) (addr string, stop func()) {
	t.Helper()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	s := grpc.NewServer()
	lbpb.RegisterLbServer(s, srv)
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.Serve(ln) })
	var once sync.Once
	stop = func() { once.Do(func() { s.Stop(); wg.Wait() }) }
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpcx.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func newClient(t *testing.T, cc *grpc.ClientConn, streams int) *Client {
	t.Helper()
	c := New(cc, Options{Streams: streams, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond,
		UnimplementedRetry: 50 * time.Millisecond, Log: zerolog.New(zerolog.NewTestWriter(t))})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestPicksTravelOnStreams(t *testing.T) {
	f := &fakeLB{}
	addr, _ := serve(t, nil, streamingLB{f})
	c := newClient(t, dial(t, addr), 3)
	testpoll.Until(t, 10*time.Second, "3 streams open", func() bool { return c.Open() == 3 })

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				key := string(rune('a'+g)) + string(rune('a'+i%26))
				addrs, err := c.Pick(t.Context(), "echo", 3, nil, key)
				if err != nil || len(addrs) != 1 || addrs[0] != "echo:"+key {
					t.Errorf("pick %s: %v %v", key, addrs, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if f.streamed.Load() != 400 || f.unary.Load() != 0 {
		t.Fatalf("streamed %d, unary %d; want 400 and 0", f.streamed.Load(), f.unary.Load())
	}
	// An error travels in the answer with its code, as over unary Pick.
	_, err := c.Pick(t.Context(), "none", 1, nil, "")
	if aserr.CodeOf(err) != aserr.ErrNoEngine.Code {
		t.Fatalf("error over the stream: %v (code %d)", err, aserr.CodeOf(err))
	}
}

func TestUnaryWithoutPickStream(t *testing.T) {
	f := &fakeLB{}
	addr, _ := serve(t, nil, f) // an lbclient without PickStream
	c := newClient(t, dial(t, addr), 2)
	for i := range 20 {
		if addrs, err := c.Pick(t.Context(), "echo", 1, nil, "k"); err != nil || addrs[0] != "echo:k" {
			t.Fatalf("pick %d: %v %v", i, addrs, err)
		}
	}
	if f.unary.Load() != 20 {
		t.Fatalf("unary picks %d of 20", f.unary.Load())
	}
	_, err := c.Pick(t.Context(), "none", 1, nil, "")
	if aserr.CodeOf(err) != aserr.ErrNoEngine.Code {
		t.Fatalf("unary error: %v", err)
	}
}

func TestStreamsReopenAfterRestart(t *testing.T) {
	f := &fakeLB{}
	addr, stop := serve(t, nil, streamingLB{f})
	cc := dial(t, addr)
	c := newClient(t, cc, 2)
	testpoll.Until(t, 10*time.Second, "streams open", func() bool { return c.Open() == 2 })
	stop()
	testpoll.Until(t, 10*time.Second, "streams closed", func() bool { return c.Open() == 0 })
	// lbclient down: picks fail with the network code, nothing hangs.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	_, err := c.Pick(ctx, "echo", 1, nil, "")
	cancel()
	if err == nil {
		t.Fatal("pick with lbclient down succeeded")
	}
	ln, lerr := net.Listen("tcp", addr)
	if lerr != nil {
		t.Skipf("address %s not free again: %v", addr, lerr)
	}
	serve(t, ln, streamingLB{f})
	testpoll.Until(t, 10*time.Second, "streams reopened", func() bool { return c.Open() == 2 })
	before := f.streamed.Load()
	if addrs, err := c.Pick(t.Context(), "echo", 1, nil, "x"); err != nil || addrs[0] != "echo:x" {
		t.Fatalf("pick after restart: %v %v", addrs, err)
	}
	if f.streamed.Load() != before+1 {
		t.Fatal("the pick after the restart did not use a stream")
	}
}

func TestPickHonoursContext(t *testing.T) {
	block := make(chan struct{})
	addr, _ := serve(t, nil, stallingLB{fakeLB: &fakeLB{}, block: block})
	c := newClient(t, dial(t, addr), 1)
	testpoll.Until(t, 10*time.Second, "stream open", func() bool { return c.Open() == 1 })
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Pick(ctx, "echo", 1, nil, "")
	close(block)
	if aserr.CodeOf(err) != aserr.ErrOnceTimeout.Code {
		t.Fatalf("stalled pick: %v (code %d), want 10102", err, aserr.CodeOf(err))
	}
	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	if _, err := c.Pick(ctx, "echo", 1, nil, ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled pick: %v", err)
	}
}

// stallingLB answers unary picks but no streamed one; it stops reading a stream after
// its first pick until block closes.
type stallingLB struct {
	*fakeLB
	block chan struct{}
}

func (s stallingLB) PickStream(st lbpb.Lb_PickStreamServer) error {
	for {
		if _, err := st.Recv(); err != nil {
			return nil
		}
		<-s.block
	}
}

// A stream retires at MaxAge and its successor goes to the next replica: picks spread
// over lbclient replicas, and none is lost at a retirement.
func TestStreamsRetireAndSpreadOverReplicas(t *testing.T) {
	a, b := &fakeLB{}, &fakeLB{}
	addrA, _ := serve(t, nil, streamingLB{a})
	addrB, _ := serve(t, nil, streamingLB{b})
	cc, err := grpcx.DialList([]string{addrA, addrB})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	c := New(cc, Options{Streams: 1, MaxAge: 20 * time.Millisecond, Log: zerolog.New(zerolog.NewTestWriter(t))})
	t.Cleanup(func() { _ = c.Close() })
	testpoll.Until(t, 10*time.Second, "both replicas served stream picks", func() bool {
		if addrs, err := c.Pick(t.Context(), "echo", 1, nil, "k"); err != nil || addrs[0] != "echo:k" {
			t.Fatalf("pick: %v %v", addrs, err)
		}
		return a.streamed.Load() > 0 && b.streamed.Load() > 0
	})
}

// With maxPending picks unanswered on a stalled stream, further picks go over unary Pick
// instead of queueing behind it.
func TestStalledStreamOverflowsToUnary(t *testing.T) {
	block := make(chan struct{})
	f := &fakeLB{}
	addr, _ := serve(t, nil, stallingLB{fakeLB: f, block: block})
	c := newClient(t, dial(t, addr), 1)
	testpoll.Until(t, 10*time.Second, "stream open", func() bool { return c.Open() == 1 })
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range maxPending {
		wg.Go(func() { _, _ = c.Pick(ctx, "echo", 1, nil, "") })
	}
	testpoll.Until(t, 10*time.Second, "the stream full", func() bool {
		s := c.streams[0]
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.sent == maxPending
	})
	if addrs, err := c.Pick(t.Context(), "echo", 1, nil, "u"); err != nil || addrs[0] != "echo:u" {
		t.Fatalf("pick past a full stream: %v %v", addrs, err)
	}
	// Callers that gave up still count: their picks are on the wire, unanswered.
	cancel()
	wg.Wait()
	if addrs, err := c.Pick(t.Context(), "echo", 1, nil, "v"); err != nil || addrs[0] != "echo:v" {
		t.Fatalf("pick past a full stream whose callers left: %v %v", addrs, err)
	}
	if f.unary.Load() != 2 {
		t.Fatalf("unary picks %d, want 2", f.unary.Load())
	}
	close(block)
}

// droppingLB streams the drops sent on its channel to every WatchDropped caller.
type droppingLB struct {
	*fakeLB
	drops   chan *lbpb.Dropped
	watches atomic.Int64
}

func (f *droppingLB) WatchDropped(_ *lbpb.WatchDroppedRequest, st lbpb.Lb_WatchDroppedServer) error {
	f.watches.Add(1)
	for {
		select {
		case d := <-f.drops:
			if err := st.Send(d); err != nil {
				return err
			}
		case <-st.Context().Done():
			return nil
		}
	}
}

func TestDroppedLoadersReachOnDroppedAcrossRestarts(t *testing.T) {
	f := &droppingLB{fakeLB: &fakeLB{}, drops: make(chan *lbpb.Dropped)}
	addr, stop := serve(t, nil, f)
	cc := dial(t, addr)
	got := make(chan string, 4)
	c := New(cc, Options{RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond, Log: zerolog.New(zerolog.NewTestWriter(t)),
		OnDropped: func(service, addr, reason string) { got <- service + "/" + addr + "/" + reason }})
	t.Cleanup(func() { _ = c.Close() })
	f.drops <- &lbpb.Dropped{Service: "echo", Addr: "a:1", Reason: "silent"}
	if d := <-got; d != "echo/a:1/silent" {
		t.Fatalf("drop %q", d)
	}
	stop()
	ln, lerr := net.Listen("tcp", addr)
	if lerr != nil {
		t.Skipf("address %s not free again: %v", addr, lerr)
	}
	f2 := &droppingLB{fakeLB: &fakeLB{}, drops: make(chan *lbpb.Dropped)}
	serve(t, ln, f2)
	f2.drops <- &lbpb.Dropped{Service: "echo", Addr: "b:1", Reason: "evicted"}
	if d := <-got; d != "echo/b:1/evicted" {
		t.Fatalf("drop after restart %q", d)
	}
}
