package licence

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
)

func TestAcquireFullRelease(t *testing.T) {
	var changes atomic.Int32
	p := New(2, 0, func() { changes.Add(1) })
	a, err := p.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Acquire(); !errors.Is(err, aserr.ErrLicenceFull) || aserr.CodeOf(err) != 10110 {
		t.Fatalf("third acquire: %v, want 10110", err)
	}
	if l := p.Load(); l.Total != 2 || l.Best != 2 || l.Idle != 0 || !l.Live {
		t.Fatalf("load when full = %+v", l)
	}
	a.Release()
	a.Release() // idempotent
	if p.InUse() != 1 {
		t.Fatalf("in use = %d, want 1", p.InUse())
	}
	if l := p.Load(); l.Idle != 1 {
		t.Fatalf("idle = %d, want 1", l.Idle)
	}
	b.Release()
	if got := changes.Load(); got != 4 {
		t.Fatalf("onChange calls = %d, want 4 (2 acquires, 2 releases)", got)
	}
}

func TestCloseRefusesAndWaitDrains(t *testing.T) {
	p := New(1, 0, nil)
	s, err := p.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	if _, err := p.Acquire(); aserr.CodeOf(err) != 10110 {
		t.Fatalf("acquire after close: %v", err)
	}
	if p.Load().Live {
		t.Fatal("live after close")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := p.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait with a slot taken: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Wait(context.Background()) }()
	s.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestWarmUpRamp(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	p := newPool(10, 10*time.Second, nil, clock)
	if got := p.Load().Idle; got != 0 {
		t.Fatalf("idle at start = %d, want 0", got)
	}
	now = now.Add(5 * time.Second)
	if got := p.Load().Idle; got != 5 {
		t.Fatalf("idle halfway = %d, want 5", got)
	}
	s, _ := p.Acquire()
	if got := p.Load().Idle; got != 4 {
		t.Fatalf("idle halfway with one in use = %d, want 4", got)
	}
	s.Release()
	now = now.Add(time.Hour)
	if got := p.Load().Idle; got != 10 {
		t.Fatalf("idle after warm-up = %d, want 10", got)
	}
}

func FuzzRamp(f *testing.F) {
	f.Add(10, int64(5), int64(10))
	f.Add(0, int64(0), int64(0))
	f.Add(3, int64(-1), int64(7))
	f.Fuzz(func(t *testing.T, free int, elapsed, warm int64) {
		if free > 1<<20 || free < -1<<20 {
			return
		}
		got := ramp(free, time.Duration(elapsed), time.Duration(warm))
		if got < 0 || (free >= 0 && got > free) || (free <= 0 && got != 0) {
			t.Fatalf("ramp(%d, %d, %d) = %d", free, elapsed, warm, got)
		}
	})
}

func TestSetMaxAppliesAtOnce(t *testing.T) {
	changes := 0
	p := New(2, 0, func() { changes++ })
	a, _ := p.Acquire()
	b, _ := p.Acquire()
	p.SetMax(1) // lower than in use: both stay valid, nothing new is admitted
	if _, err := p.Acquire(); !errors.Is(err, aserr.ErrLicenceFull) {
		t.Fatalf("acquire beyond the lowered licence: %v, want 10110", err)
	}
	if l := p.Load(); l.Total != 1 || l.Idle != 0 {
		t.Fatalf("load %+v, want total 1 idle 0", l)
	}
	a.Release()
	b.Release()
	p.SetMax(3)
	if l := p.Load(); l.Total != 3 || l.Idle != 3 {
		t.Fatalf("load %+v, want total 3 idle 3", l)
	}
	for i := 0; i < 3; i++ {
		if _, err := p.Acquire(); err != nil {
			t.Fatalf("acquire %d within the raised licence: %v", i, err)
		}
	}
	if changes < 2 {
		t.Fatalf("onChange called %d times", changes)
	}
}
