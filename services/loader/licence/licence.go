// Package licence counts a loader's concurrent engine slots (AIGES licence) and computes
// the load it reports to polaris.
//
//	p := licence.New(10, 10*time.Second, registrar.Notify)
//	slot, err := p.Acquire()      // aserr.ErrLicenceFull (10110) at once when all are busy
//	defer slot.Release()          // idempotent
//	l := p.Load()                 // {Total, Best, Idle, Live}
package licence

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
)

// ErrDraining is returned by Acquire after Close: the loader is going offline. It carries
// the licence-full code so callers try another loader.
var ErrDraining = aserr.New(aserr.ErrLicenceFull.Code, "loader is draining")

// Load is the soft state a loader reports.
type Load struct {
	Total, Best, Idle int
	Live              bool
}

// Pool hands out at most max slots at a time. It is safe for concurrent use.
type Pool struct {
	max      int
	warmUp   time.Duration
	start    time.Time
	now      func() time.Time
	onChange func()

	mu     sync.Mutex
	inUse  int
	closed bool
	idle   chan struct{} // closed while inUse == 0
}

// New returns a pool of max slots. Reported idle slots ramp linearly from 0 to their
// real number over warmUp after New (0 = no ramp). onChange (may be nil) is called,
// outside any lock, after every acquire and release.
func New(max int, warmUp time.Duration, onChange func()) *Pool {
	return newPool(max, warmUp, onChange, time.Now)
}

func newPool(max int, warmUp time.Duration, onChange func(), now func() time.Time) *Pool {
	idle := make(chan struct{})
	close(idle)
	return &Pool{max: max, warmUp: warmUp, start: now(), now: now, onChange: onChange, idle: idle}
}

// StartWarmUp restarts the warm-up window from now (the loader calls it when it starts serving).
func (p *Pool) StartWarmUp() {
	t := p.now()
	p.mu.Lock()
	p.start = t
	p.mu.Unlock()
}

// SetOnChange replaces the change callback (for wiring after construction).
func (p *Pool) SetOnChange(f func()) {
	p.mu.Lock()
	p.onChange = f
	p.mu.Unlock()
}

// SetMax changes the number of slots at once: a larger licence admits more at the next
// Acquire; a smaller one refuses new slots until enough of the taken ones are released
// (slots already taken stay valid). Load reports the new total. max below 1 is taken as 1.
func (p *Pool) SetMax(n int) {
	n = max(n, 1)
	p.mu.Lock()
	changed := p.max != n
	p.max = n
	cb := p.onChange
	p.mu.Unlock()
	if changed && cb != nil {
		cb()
	}
}

// Max is the number of slots.
func (p *Pool) Max() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.max
}

// Slot is one acquired licence slot.
type Slot struct {
	p    *Pool
	once sync.Once
}

// Acquire takes a slot, or fails at once with aserr.ErrLicenceFull when all are busy
// (ErrDraining after Close).
func (p *Pool) Acquire() (*Slot, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrDraining
	}
	if p.inUse >= p.max {
		n := p.inUse
		p.mu.Unlock()
		return nil, fmt.Errorf("%d of %d slots in use: %w", n, p.max, aserr.ErrLicenceFull)
	}
	p.inUse++
	if p.inUse == 1 {
		p.idle = make(chan struct{})
	}
	cb := p.onChange
	p.mu.Unlock()
	if cb != nil {
		cb()
	}
	return &Slot{p: p}, nil
}

// Release gives the slot back; only the first call counts.
func (s *Slot) Release() {
	s.once.Do(func() {
		p := s.p
		p.mu.Lock()
		p.inUse--
		if p.inUse == 0 {
			close(p.idle)
		}
		cb := p.onChange
		p.mu.Unlock()
		if cb != nil {
			cb()
		}
	})
}

// InUse is the number of slots taken.
func (p *Pool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inUse
}

// Close refuses every later Acquire; slots already taken stay valid until released.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
}

// Wait blocks until no slot is in use or ctx ends.
func (p *Pool) Wait(ctx context.Context) error {
	p.mu.Lock()
	ch := p.idle
	p.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Load returns the load to report: total = best = max, idle = free slots scaled by the
// warm-up ramp, live until Close.
func (p *Pool) Load() Load {
	p.mu.Lock()
	total, free, closed, start := p.max, p.max-p.inUse, p.closed, p.start
	p.mu.Unlock()
	return Load{Total: total, Best: total, Idle: ramp(free, p.now().Sub(start), p.warmUp), Live: !closed}
}

// ramp scales free by elapsed/warmUp, capped at free.
func ramp(free int, elapsed, warmUp time.Duration) int {
	if free <= 0 {
		return 0
	}
	if warmUp <= 0 || elapsed >= warmUp {
		return free
	}
	if elapsed <= 0 {
		return 0
	}
	return int(float64(free) * (float64(elapsed) / float64(warmUp)))
}
