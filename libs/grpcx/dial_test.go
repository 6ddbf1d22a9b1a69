package grpcx

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// countingServer serves grpc.health.v1 on 127.0.0.1:0 and counts the calls it gets.
func countingServer(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	s := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		n.Add(1)
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(s, health.NewServer())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	t.Cleanup(func() { s.Stop(); <-done })
	return ln.Addr().String(), &n
}

func TestDialListRoundRobin(t *testing.T) {
	a, na := countingServer(t)
	b, nb := countingServer(t)
	for _, target := range []string{a + "," + b, " " + a + " , " + b + ",,"} {
		cc, err := Dial(target)
		if err != nil {
			t.Fatal(err)
		}
		hc := healthpb.NewHealthClient(cc)
		na.Store(0)
		nb.Store(0)
		// Round-robin covers a replica once its subchannel is ready; the first calls may
		// all land on the first to connect, so call until both served some (bounded).
		deadline := time.Now().Add(5 * time.Second)
		calls := int64(0)
		for na.Load() == 0 || nb.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("calls split %d/%d over %q, want both replicas used", na.Load(), nb.Load(), target)
			}
			if _, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
				t.Fatal(err)
			}
			calls++
		}
		_ = cc.Close()
		if na.Load()+nb.Load() != calls {
			t.Fatalf("%d calls, %d served", calls, na.Load()+nb.Load())
		}
	}
}

func TestDialListSkipsDeadReplica(t *testing.T) {
	a, na := countingServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()
	cc, err := DialList([]string{dead, a})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	hc := healthpb.NewHealthClient(cc)
	for range 5 {
		if _, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
			t.Fatal(err)
		}
	}
	if na.Load() != 5 {
		t.Fatalf("live replica served %d of 5", na.Load())
	}
	if _, err := DialList(nil); err == nil {
		t.Fatal("empty list accepted")
	}
}

func TestSplitAddrs(t *testing.T) {
	got := SplitAddrs(" a:1, b:2,,a:1 ,")
	if !slices.Equal(got, []string{"a:1", "b:2"}) {
		t.Fatalf("SplitAddrs = %q", got)
	}
	if got := SplitAddrs(""); len(got) != 0 {
		t.Fatalf("SplitAddrs(\"\") = %q", got)
	}
}

func FuzzSplitAddrs(f *testing.F) {
	f.Add("a:1,b:2")
	f.Add(" , ,x")
	f.Fuzz(func(t *testing.T, s string) {
		out := SplitAddrs(s)
		for i, a := range out {
			if a == "" || strings.Contains(a, ",") || strings.TrimSpace(a) != a {
				t.Fatalf("bad entry %q", a)
			}
			if slices.Contains(out[:i], a) {
				t.Fatalf("repeat %q", a)
			}
		}
	})
}

// serveHealth serves grpc.health.v1 on ln until the returned stop is called.
func serveHealth(ln net.Listener) (stop func()) {
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	return func() { s.Stop(); <-done }
}

// TestReconnectWithinASecond stops a peer for longer than grpc's default back-off takes to
// reach several seconds, starts it again on the same address, and checks that calls made
// without waiting for readiness succeed again within ReconnectMaxDelay (plus scheduling
// slack) of the peer listening.
func TestReconnectWithinASecond(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	stop := serveHealth(ln)
	cc, err := Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	hc := healthpb.NewHealthClient(cc)
	if _, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	stop()
	// 6 s down: grpc's default back-off (1 s × 1.6ⁿ) would next try about 9 s after the
	// break; the suite's tries at least every second.
	down := time.Now()
	for time.Since(down) < 6*time.Second {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil {
			t.Fatal("call succeeded while the peer was down")
		}
		time.Sleep(50 * time.Millisecond) // pacing the calls of the outage, not synchronisation
	}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("address %s taken meanwhile: %v", addr, err)
	}
	back := time.Now()
	defer serveHealth(ln)()
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil {
			break
		}
		if time.Since(back) > 5*time.Second {
			t.Fatalf("no call succeeded within 5 s of the peer's return: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if took := time.Since(back); took > ReconnectMaxDelay*3/2 {
		t.Fatalf("first success %v after the peer's return, want ≤ %v", took, ReconnectMaxDelay*3/2)
	} else {
		t.Logf("first success %v after the peer's return", took)
	}
}
