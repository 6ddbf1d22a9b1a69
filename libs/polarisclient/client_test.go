package polarisclient

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
)

// fakeRegistry is an in-memory polaris that forgets the instance on demand.
type fakeRegistry struct {
	polarispb.UnimplementedRegistryServer
	mu        sync.Mutex
	known     bool
	registers int
	beats     []int32 // live values seen
	deregs    int
}

func (f *fakeRegistry) Register(context.Context, *polarispb.RegisterRequest) (*polarispb.RegisterResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.known = true
	f.registers++
	return &polarispb.RegisterResponse{}, nil
}

func (f *fakeRegistry) Heartbeat(_ context.Context, r *polarispb.HeartbeatRequest) (*polarispb.HeartbeatResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.beats = append(f.beats, r.GetLoad().GetLive())
	return &polarispb.HeartbeatResponse{Known: f.known}, nil
}

func (f *fakeRegistry) Deregister(context.Context, *polarispb.DeregisterRequest) (*polarispb.DeregisterResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deregs++
	f.known = false
	return &polarispb.DeregisterResponse{}, nil
}

func (f *fakeRegistry) snapshot() (registers, beats, deregs int, lastLive int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.beats) > 0 {
		lastLive = f.beats[len(f.beats)-1]
	}
	return f.registers, len(f.beats), f.deregs, lastLive
}

func TestRegistrarLifecycle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeRegistry{}
	srv := grpc.NewServer()
	polarispb.RegisterRegistryServer(srv, fake)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	c, err := Dial(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	load := func() *polarispb.Load { return &polarispb.Load{Total: 2, Best: 2, Idle: 2, Live: 1} }
	// A long interval: every heartbeat below is caused by Notify, not the ticker.
	r := c.NewRegistrar(&polarispb.Instance{Service: "echo", Addr: "127.0.0.1:1"}, time.Hour, load, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	select {
	case <-r.Registered():
	case <-time.After(5 * time.Second):
		t.Fatal("not registered")
	}
	r.Notify()
	testpoll.Until(t, 5*time.Second, "the condition", func() bool { _, b, _, _ := fake.snapshot(); return b >= 1 })

	// polaris forgets the instance: the next heartbeat re-registers.
	fake.mu.Lock()
	fake.known = false
	fake.mu.Unlock()
	r.Notify()
	testpoll.Until(t, 5*time.Second, "the condition", func() bool { reg, _, _, _ := fake.snapshot(); return reg == 2 })

	if err := r.Offline(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, _, deregs, live := fake.snapshot()
	if deregs != 1 || live != 0 {
		t.Fatalf("offline: deregs=%d last live=%d", deregs, live)
	}
}
