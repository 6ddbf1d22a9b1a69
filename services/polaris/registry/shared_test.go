package registry

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeShared is a SharedStore whose views the test sends.
type fakeShared struct {
	*MemStore
	views    chan []Registration
	admins   chan map[Key]Admin
	alive    atomic.Int64
	puts     atomic.Int64
	aliveErr atomic.Bool
}

func newFakeShared() *fakeShared {
	return &fakeShared{MemStore: NewMemStore(), views: make(chan []Registration), admins: make(chan map[Key]Admin)}
}

func (f *fakeShared) PutInstance(ctx context.Context, reg Registration) error {
	f.puts.Add(1)
	return f.MemStore.PutInstance(ctx, reg)
}

func (f *fakeShared) Alive(context.Context, Key) error {
	f.alive.Add(1)
	if f.aliveErr.Load() {
		return errors.New("unknown check")
	}
	return nil
}

func (f *fakeShared) WatchInstances(ctx context.Context, fn func([]Registration)) {
	for {
		select {
		case <-ctx.Done():
			return
		case v := <-f.views:
			fn(v)
		}
	}
}

func (f *fakeShared) WatchAdmins(ctx context.Context, fn func(map[Key]Admin)) {
	for {
		select {
		case <-ctx.Done():
			return
		case v := <-f.admins:
			fn(v)
		}
	}
}

func TestSharedStoreViews(t *testing.T) {
	st := newFakeShared()
	c := &clock{t: time.Unix(1000, 0)}
	r, err := New(context.Background(), st, Options{TTL: 3 * time.Second, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.Run(ctx) }()
	defer func() { cancel(); wg.Wait(); r.Close() }()
	sub, _ := r.Subscribe("", 64)
	defer sub.Close()
	next(t, sub)

	remote := Registration{Instance: Instance{Service: "echo", Addr: "h:1", Kind: KindProvider}, TTL: time.Second}
	st.views <- []Registration{remote}
	if ev := next(t, sub); ev.Type != EventAdded || ev.Instances[0].TTL != time.Second {
		t.Fatalf("remote registration: %+v", ev)
	}
	// A confirmed instance is the store's to evict, not the sweeper's.
	c.Add(time.Minute)
	if r.Sweep(ctx) != 0 || r.Len() != 1 {
		t.Fatal("the sweeper evicted a confirmed instance")
	}
	// A local registration the view does not show yet stays until twice its TTL.
	if _, err := r.Register(ctx, Instance{Service: "echo", Addr: "h:2"}, Load{}, 0); err != nil {
		t.Fatal(err)
	}
	next(t, sub)
	st.views <- []Registration{remote}
	if r.Len() != 2 {
		t.Fatal("an unconfirmed local registration was dropped by a view")
	}
	st.admins <- map[Key]Admin{{Service: "echo", Addr: "h:1"}: {Enabled: false, Weight: 3}}
	if ev := next(t, sub); ev.Type != EventChanged || ev.Instances[0].Admin.Weight != 3 {
		t.Fatalf("remote admin: %+v", ev)
	}
	st.views <- nil // the remote instance failed its check
	if ev := next(t, sub); ev.Type != EventRemoved || ev.Instances[0].Instance.Addr != "h:1" {
		t.Fatalf("remote removal: %+v", ev)
	}
	c.Add(7 * time.Second)
	if r.Sweep(ctx) != 1 || r.Len() != 0 {
		t.Fatal("an unconfirmed registration outlived twice its TTL")
	}
}

func TestSharedStoreHeartbeatPassThrough(t *testing.T) {
	st := newFakeShared()
	c := &clock{t: time.Unix(1000, 0)}
	r, err := New(context.Background(), st, Options{TTL: 3 * time.Second, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k := Key{Service: "echo", Addr: "h:1"}
	if _, err := r.Register(ctx, Instance{Service: k.Service, Addr: k.Addr}, Load{}, 0); err != nil {
		t.Fatal(err)
	}
	for range 60 { // 6 s of heartbeats at 10 Hz
		c.Add(100 * time.Millisecond)
		if known, err := r.Heartbeat(ctx, k, Load{Idle: 1}); !known || err != nil {
			t.Fatalf("heartbeat: %v %v", known, err)
		}
	}
	if n := st.alive.Load(); n < 5 || n > 6 {
		t.Fatalf("%d liveness writes in 6 s at TTL 3 s: want one per TTL/3", n)
	}
	// The store lost the instance: the registry puts it again.
	st.aliveErr.Store(true)
	puts := st.puts.Load()
	c.Add(time.Second)
	if _, err := r.Heartbeat(ctx, k, Load{}); err != nil {
		t.Fatal(err)
	}
	if st.puts.Load() != puts+1 {
		t.Fatal("a failed pass-through did not register again")
	}
}
