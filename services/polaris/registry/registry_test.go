package registry

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/services/polaris/internal/fanout"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newReg(t *testing.T) (*Registry, *clock) {
	t.Helper()
	c := &clock{t: time.Unix(1000, 0)}
	r, err := New(context.Background(), NewMemStore(), Options{TTL: 3 * time.Second, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return r, c
}

func next(t *testing.T, s *Subscription) Event {
	t.Helper()
	select {
	case ev, ok := <-s.C():
		if !ok {
			t.Fatalf("subscription closed: %v", s.Err())
		}
		return ev
	case <-time.After(2 * time.Second):
		t.Fatal("no event")
	}
	return Event{}
}

var ctx = context.Background()

func inst(svc, addr string) Instance { return Instance{Service: svc, Addr: addr} }

func TestRegisterHeartbeatDeregister(t *testing.T) {
	r, _ := newReg(t)
	ttl, err := r.Register(ctx, inst("echo", "a:1"), Load{Total: 4, Idle: 4, Live: 1}, 0)
	if err != nil || ttl != 3*time.Second {
		t.Fatalf("register: %v %v", ttl, err)
	}
	known, err := r.Heartbeat(ctx, Key{"echo", "a:1"}, Load{Total: 4, Idle: 2, Live: 1})
	if err != nil || !known {
		t.Fatalf("heartbeat known=%v err=%v", known, err)
	}
	l := r.List("echo")
	if len(l) != 1 || l[0].Load.Idle != 2 || l[0].Instance.Kind != KindProvider || l[0].Admin != DefaultAdmin() {
		t.Fatalf("list: %+v", l)
	}
	if known, _ := r.Heartbeat(ctx, Key{"echo", "b:1"}, Load{}); known {
		t.Fatal("unknown instance reported known")
	}
	if ok, _ := r.Deregister(ctx, Key{"echo", "a:1"}); !ok {
		t.Fatal("deregister of a known instance")
	}
	if known, _ := r.Heartbeat(ctx, Key{"echo", "a:1"}, Load{}); known {
		t.Fatal("deregistered instance still known")
	}
	if len(r.List("")) != 0 {
		t.Fatal("list not empty")
	}
}

func TestRegisterInvalid(t *testing.T) {
	r, _ := newReg(t)
	for _, in := range []Instance{{Service: "echo"}, {Addr: "a:1"}, {Service: "s", Addr: "a", Kind: "other"}} {
		_, err := r.Register(ctx, in, Load{}, 0)
		if !errors.Is(err, ErrInvalid) || aserr.CodeOf(err) != aserr.ErrInvalidParam.Code {
			t.Fatalf("register %+v: %v", in, err)
		}
	}
}

func TestTTLEvictionWithClock(t *testing.T) {
	r, c := newReg(t)
	_, _ = r.Register(ctx, inst("echo", "a:1"), Load{Live: 1}, 0)
	_, _ = r.Register(ctx, inst("echo", "b:1"), Load{Live: 1}, 10*time.Second)
	c.Add(2 * time.Second)
	_, _ = r.Heartbeat(ctx, Key{"echo", "a:1"}, Load{Live: 1})
	c.Add(2500 * time.Millisecond)
	if n := r.Sweep(ctx); n != 0 {
		t.Fatalf("evicted %d before TTL", n)
	}
	c.Add(time.Second)
	if n := r.Sweep(ctx); n != 1 {
		t.Fatalf("evicted %d, want 1", n)
	}
	l := r.List("echo")
	if len(l) != 1 || l[0].Instance.Addr != "b:1" {
		t.Fatalf("left %+v, want only b:1 (its own ttl 10s)", l)
	}
	if r.Stats().Evictions != 1 {
		t.Fatalf("stats %+v", r.Stats())
	}
}

func TestSweeperEvictsInRealTime(t *testing.T) {
	r, err := New(ctx, NewMemStore(), Options{TTL: 100 * time.Millisecond, SweepInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	_, _ = r.Register(ctx, inst("echo", "a:1"), Load{Live: 1}, 0)
	testpoll.Until(t, 2*time.Second, "the condition", func() bool { return r.Len() == 0 })
}

func TestAdminSurvivesReregistrationAndEviction(t *testing.T) {
	r, c := newReg(t)
	k := Key{"echo", "a:1"}
	_, _ = r.Register(ctx, inst("echo", "a:1"), Load{Live: 1}, 0)
	if err := r.SetAdmin(ctx, k, Admin{Enabled: false, Weight: 7}); err != nil {
		t.Fatal(err)
	}
	_, _ = r.Register(ctx, inst("echo", "a:1"), Load{Live: 1}, 0)
	if a := r.List("echo")[0].Admin; a != (Admin{Enabled: false, Weight: 7}) {
		t.Fatalf("admin after re-register: %+v", a)
	}
	c.Add(4 * time.Second)
	r.Sweep(ctx)
	_, _ = r.Deregister(ctx, k)
	_, _ = r.Register(ctx, inst("echo", "a:1"), Load{Live: 1}, 0)
	if a := r.List("echo")[0].Admin; a != (Admin{Enabled: false, Weight: 7}) {
		t.Fatalf("admin after eviction and re-register: %+v", a)
	}
	// Admin state set before an instance exists applies when it registers.
	_ = r.SetAdmin(ctx, Key{"echo", "b:1"}, Admin{Enabled: true, Weight: 5})
	_, _ = r.Register(ctx, inst("echo", "b:1"), Load{}, 0)
	if a := r.List("echo")[1].Admin; a.Weight != 5 {
		t.Fatalf("pre-set admin: %+v", a)
	}
}

func TestAdminLoadedFromStore(t *testing.T) {
	st := NewMemStore()
	_ = st.PutAdmin(ctx, Key{"echo", "a:1"}, Admin{Weight: 3})
	r, err := New(ctx, st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = r.Register(ctx, inst("echo", "a:1"), Load{}, 0)
	if a := r.List("")[0].Admin; a != (Admin{Weight: 3}) {
		t.Fatalf("admin %+v", a)
	}
}

func TestEventsOrder(t *testing.T) {
	r, c := newReg(t)
	_, _ = r.Register(ctx, inst("echo", "a:1"), Load{Live: 1}, 0)
	_, _ = r.Register(ctx, inst("other", "o:1"), Load{Live: 1}, 0)
	sub, err := r.Subscribe("echo", 16)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ev := next(t, sub)
	if ev.Type != EventSnapshot || len(ev.Instances) != 1 || ev.Instances[0].Instance.Addr != "a:1" {
		t.Fatalf("snapshot %+v", ev)
	}
	_, _ = r.Register(ctx, inst("other", "o:2"), Load{}, 0) // filtered out
	_, _ = r.Register(ctx, inst("echo", "b:1"), Load{Live: 1}, 0)
	_, _ = r.Heartbeat(ctx, Key{"echo", "b:1"}, Load{Idle: 3, Live: 1})
	_ = r.SetAdmin(ctx, Key{"echo", "b:1"}, Admin{Enabled: false, Weight: 1})
	_, _ = r.Register(ctx, inst("echo", "b:1"), Load{Live: 1}, 0)
	_, _ = r.Deregister(ctx, Key{"echo", "b:1"})
	c.Add(5 * time.Second)
	r.Sweep(ctx)
	want := []struct {
		typ  EventType
		addr string
	}{{EventAdded, "b:1"}, {EventLoad, "b:1"}, {EventChanged, "b:1"}, {EventChanged, "b:1"}, {EventRemoved, "b:1"}, {EventRemoved, "a:1"}}
	var lastSeq uint64
	for i, w := range want {
		ev := next(t, sub)
		if ev.Type != w.typ || len(ev.Instances) != 1 || ev.Instances[0].Instance.Addr != w.addr {
			t.Fatalf("event %d: got %s %+v, want %s %s", i, ev.Type, ev.Instances, w.typ, w.addr)
		}
		if w.typ == EventLoad {
			if ev.Instances[0].Load.Idle != 3 || ev.Instances[0].Seq <= lastSeq {
				t.Fatalf("load event %+v", ev.Instances[0])
			}
		}
		if i == 2 && ev.Instances[0].Admin.Enabled {
			t.Fatal("admin change not in CHANGED event")
		}
		lastSeq = ev.Instances[0].Seq
	}
}

func TestSlowWatcherIsDroppedAndRegistryGoesOn(t *testing.T) {
	r, _ := newReg(t)
	slow, _ := r.Subscribe("", 2)
	fast, _ := r.Subscribe("", 100)
	defer fast.Close()
	_, _ = r.Register(ctx, inst("echo", "a:1"), Load{}, 0)
	for i := 0; i < 10; i++ {
		if known, _ := r.Heartbeat(ctx, Key{"echo", "a:1"}, Load{Idle: int32(i)}); !known {
			t.Fatal("heartbeat")
		}
	}
	n := 0
	for range slow.C() {
		n++
	}
	if slow.Err() != fanout.ErrOverflow || n != 3 {
		t.Fatalf("slow watcher: %d events, err %v", n, slow.Err())
	}
	if got := len(fast.C()); got != 12 {
		t.Fatalf("fast watcher has %d events, want 12", got)
	}
	if r.Stats().WatchersDropped != 1 || r.Watchers() != 1 {
		t.Fatalf("stats %+v watchers %d", r.Stats(), r.Watchers())
	}
	r.Close()
	for range fast.C() {
	}
	if fast.Err() != fanout.ErrClosed {
		t.Fatalf("after Close: %v", fast.Err())
	}
	if _, err := r.Subscribe("", 1); err != fanout.ErrClosed {
		t.Fatalf("subscribe after close: %v", err)
	}
}

func TestConsumerRecorded(t *testing.T) {
	r, _ := newReg(t)
	_, _ = r.Register(ctx, Instance{Service: "echo", Addr: "c:1", Kind: KindConsumer}, Load{}, 0)
	if l := r.List("echo"); len(l) != 1 || l[0].Instance.Kind != KindConsumer {
		t.Fatalf("list %+v", l)
	}
}

func TestLabelsAreCopied(t *testing.T) {
	r, _ := newReg(t)
	labels := map[string]string{"zone": "a"}
	_, _ = r.Register(ctx, Instance{Service: "echo", Addr: "a:1", Labels: labels}, Load{}, 0)
	labels["zone"] = "b"
	if z := r.List("")[0].Instance.Labels["zone"]; z != "a" {
		t.Fatalf("label changed to %q through the caller's map", z)
	}
}
