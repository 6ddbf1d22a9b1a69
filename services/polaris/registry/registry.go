package registry

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/athenaserving/asf/services/polaris/internal/fanout"
)

// Options tune a Registry; zero values take the defaults.
type Options struct {
	// TTL is the default time an instance lives after its last heartbeat.
	TTL time.Duration
	// SweepInterval is how often Run looks for expired instances.
	SweepInterval time.Duration
	// Now is the clock (tests inject one); time.Now by default.
	Now func() time.Time
}

// Stats are the registry's running counters.
type Stats struct {
	Registrations uint64
	Heartbeats    uint64
	Evictions     uint64
	// WatchersDropped counts watchers ended because they did not keep up.
	WatchersDropped uint64
}

type entry struct {
	inst     Instance
	load     Load
	lastSeen time.Time
	ttl      time.Duration
	seq      uint64
	// passed is when liveness was last passed through to a shared store.
	passed time.Time
	// confirmed is set once a shared store's view holds the instance: from then on the
	// store, not the local sweeper, decides when it goes.
	confirmed bool
}

type watchState struct{ service string }

// Registry holds the instances of every service. It is safe for concurrent use.
// Lock order: Registry.mu, then the watcher hub's lock.
type Registry struct {
	store  Store
	shared SharedStore // store when it is shared, else nil
	ttl    time.Duration
	sweep  time.Duration
	now    func() time.Time

	mu      sync.Mutex
	entries map[Key]*entry
	admins  map[Key]Admin // apart from entries: survives deregistration and eviction
	seq     uint64
	hub     *fanout.Hub[Event, watchState]

	registrations, heartbeats, evictions, dropped atomic.Uint64
}

// New returns a registry backed by store, with the admin states store already holds.
func New(ctx context.Context, store Store, opt Options) (*Registry, error) {
	if opt.TTL <= 0 {
		opt.TTL = DefaultTTL
	}
	if opt.SweepInterval <= 0 {
		opt.SweepInterval = DefaultSweepInterval
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	admins, err := store.Admins(ctx)
	if err != nil {
		return nil, fmt.Errorf("load admin states: %w", err)
	}
	regs, err := store.Instances(ctx)
	if err != nil {
		return nil, fmt.Errorf("load registrations: %w", err)
	}
	r := &Registry{
		store: store, ttl: opt.TTL, sweep: opt.SweepInterval, now: opt.Now,
		entries: map[Key]*entry{}, admins: admins,
		hub: fanout.NewHub[Event, watchState](),
	}
	r.shared, _ = store.(SharedStore)
	// Restored instances get a fresh TTL from now: they are evicted unless they
	// heartbeat within it (or, on a shared store, unless the store keeps them alive).
	now := r.now()
	for _, reg := range regs {
		ttl := reg.TTL
		if ttl <= 0 {
			ttl = r.ttl
		}
		r.seq++
		r.entries[reg.Instance.Key()] = &entry{
			inst: cloneInstance(reg.Instance), lastSeen: now, passed: now, ttl: ttl, seq: r.seq,
			confirmed: r.shared != nil,
		}
	}
	return r, nil
}

// TTL is the default TTL.
func (r *Registry) TTL() time.Duration { return r.ttl }

// Register adds inst or refreshes it when its key is known (then CHANGED is sent, not
// ADDED). The admin state of the key is kept as it was. ttl 0 takes the default. It
// returns the TTL in force.
func (r *Registry) Register(ctx context.Context, inst Instance, load Load, ttl time.Duration) (time.Duration, error) {
	if inst.Service == "" || inst.Addr == "" {
		return 0, fmt.Errorf("register %q at %q: service and addr are required: %w", inst.Service, inst.Addr, ErrInvalid)
	}
	if inst.Kind == "" {
		inst.Kind = KindProvider
	}
	if inst.Kind != KindProvider && inst.Kind != KindConsumer {
		return 0, fmt.Errorf("register %s/%s: kind %q: %w", inst.Service, inst.Addr, inst.Kind, ErrInvalid)
	}
	if ttl <= 0 {
		ttl = r.ttl
	}
	inst = cloneInstance(inst)
	k := inst.Key()

	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.store.PutInstance(ctx, Registration{Instance: inst, TTL: ttl}); err != nil {
		return 0, fmt.Errorf("register %s/%s: %w", k.Service, k.Addr, err)
	}
	e, known := r.entries[k]
	if !known {
		e = &entry{}
		r.entries[k] = e
	}
	r.seq++
	e.inst, e.load, e.lastSeen, e.ttl, e.seq = inst, load, r.now(), ttl, r.seq
	e.passed = e.lastSeen
	r.registrations.Add(1)
	typ := EventAdded
	if known {
		typ = EventChanged
	}
	r.emitLocked(typ, r.stateLocked(k, e))
	return ttl, nil
}

// Heartbeat records load for k and renews its TTL. known is false when the registry does
// not hold k (evicted, deregistered or never registered): the caller registers again.
// On a shared store the heartbeat is passed through at most once per TTL/3.
func (r *Registry) Heartbeat(ctx context.Context, k Key, load Load) (known bool, err error) {
	if k.Service == "" || k.Addr == "" {
		return false, fmt.Errorf("heartbeat %q at %q: %w", k.Service, k.Addr, ErrInvalid)
	}
	r.mu.Lock()
	e, ok := r.entries[k]
	if !ok {
		r.mu.Unlock()
		return false, nil
	}
	r.seq++
	now := r.now()
	e.load, e.lastSeen, e.seq = load, now, r.seq
	r.heartbeats.Add(1)
	r.emitLocked(EventLoad, r.stateLocked(k, e))
	pass := r.shared != nil && now.Sub(e.passed) >= e.ttl/3
	var reg Registration
	if pass {
		e.passed = now
		reg = Registration{Instance: cloneInstance(e.inst), TTL: e.ttl}
	}
	r.mu.Unlock()
	if !pass {
		return true, nil
	}
	// The store call runs outside the lock: heartbeats of other instances go on.
	if aerr := r.shared.Alive(ctx, k); aerr != nil {
		if perr := r.shared.PutInstance(ctx, reg); perr != nil {
			r.mu.Lock()
			if e, ok := r.entries[k]; ok {
				e.passed = time.Time{} // try again with the next heartbeat
			}
			r.mu.Unlock()
			return true, fmt.Errorf("heartbeat %s/%s: %w", k.Service, k.Addr, errors.Join(aerr, perr))
		}
	}
	return true, nil
}

// Deregister removes k and sends REMOVED; its admin state stays. It returns whether k
// was registered.
func (r *Registry) Deregister(ctx context.Context, k Key) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.removeLocked(ctx, k)
}

func (r *Registry) removeLocked(ctx context.Context, k Key) (bool, error) {
	e, ok := r.entries[k]
	if !ok {
		return false, nil
	}
	if err := r.store.DeleteInstance(ctx, k); err != nil {
		return true, fmt.Errorf("deregister %s/%s: %w", k.Service, k.Addr, err)
	}
	delete(r.entries, k)
	r.emitLocked(EventRemoved, r.stateLocked(k, e))
	return true, nil
}

// SetAdmin stores the admin state of k, registered or not, and sends CHANGED when k is
// registered.
func (r *Registry) SetAdmin(ctx context.Context, k Key, a Admin) error {
	if k.Service == "" || k.Addr == "" {
		return fmt.Errorf("set admin %q at %q: %w", k.Service, k.Addr, ErrInvalid)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.store.PutAdmin(ctx, k, a); err != nil {
		return fmt.Errorf("set admin %s/%s: %w", k.Service, k.Addr, err)
	}
	r.admins[k] = a
	if e, ok := r.entries[k]; ok {
		r.emitLocked(EventChanged, r.stateLocked(k, e))
	}
	return nil
}

// List returns the instances of service ("" = every service), sorted by service and addr.
// Consumers are included with Kind "consumer"; callers that route must skip them.
func (r *Registry) List(service string) []State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.listLocked(service)
}

func (r *Registry) listLocked(service string) []State {
	out := make([]State, 0, len(r.entries))
	for k, e := range r.entries {
		if service == "" || k.Service == service {
			out = append(out, r.stateLocked(k, e))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Instance, out[j].Instance
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		return a.Addr < b.Addr
	})
	return out
}

// Subscription is a watcher of registry events: read C until it is closed, then Err
// tells why (fanout.ErrOverflow for a watcher that fell behind, fanout.ErrClosed at
// shutdown, nil after Close).
type Subscription = fanout.Sub[Event, watchState]

// Subscribe watches service ("" = every service). The first event is a snapshot; up to
// buf later events are buffered, and a watcher that falls further behind is dropped so
// that it never slows the registry.
func (r *Registry) Subscribe(service string, buf int) (*Subscription, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hub.Add(buf, Event{Type: EventSnapshot, Instances: r.listLocked(service)}, watchState{service: service})
}

// Watchers is the number of live subscriptions.
func (r *Registry) Watchers() int { return r.hub.Len() }

// Close ends every subscription with fanout.ErrClosed and refuses new ones.
func (r *Registry) Close() { r.hub.Close() }

// Run evicts expired instances every sweep interval until ctx ends. On a shared store it
// also follows the store's views of instances and admin states.
func (r *Registry) Run(ctx context.Context) {
	if r.shared != nil {
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Add(2)
		go func() { defer wg.Done(); r.shared.WatchInstances(ctx, r.applyInstances) }()
		go func() { defer wg.Done(); r.shared.WatchAdmins(ctx, r.applyAdmins) }()
	}
	t := time.NewTicker(r.sweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.Sweep(ctx)
		}
	}
}

// Sweep evicts every instance whose TTL has run out and returns how many it evicted.
func (r *Registry) Sweep(ctx context.Context) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	n := 0
	for k, e := range r.entries {
		ttl := e.ttl
		if r.shared != nil {
			if e.confirmed {
				continue // the shared store decides
			}
			ttl *= 2 // not yet in the store's view: give it time to show
		}
		if now.Sub(e.lastSeen) <= ttl {
			continue
		}
		if ok, err := r.removeLocked(ctx, k); ok && err == nil {
			n++
		}
	}
	r.evictions.Add(uint64(n))
	return n
}

// Stats returns the running counters.
func (r *Registry) Stats() Stats {
	return Stats{
		Registrations:   r.registrations.Load(),
		Heartbeats:      r.heartbeats.Load(),
		Evictions:       r.evictions.Load(),
		WatchersDropped: r.dropped.Load(),
	}
}

// Len is the number of registered instances.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.entries)
}

func (r *Registry) stateLocked(k Key, e *entry) State {
	a, ok := r.admins[k]
	if !ok {
		a = DefaultAdmin()
	}
	return State{Instance: cloneInstance(e.inst), Load: e.load, Admin: a, LastSeen: e.lastSeen, TTL: e.ttl, Seq: e.seq}
}

func (r *Registry) emitLocked(t EventType, st State) {
	ev := Event{Type: t, Instances: []State{st}}
	n := r.hub.Each(func(s *Subscription) (Event, bool) {
		return ev, s.State.service == "" || s.State.service == st.Instance.Service
	})
	r.dropped.Add(uint64(n))
}

// applyInstances brings the registry in line with a shared store's view of the live
// registrations: new ones are ADDED, changed ones CHANGED, and confirmed ones that left
// the view (deregistered elsewhere, or failed their liveness check) REMOVED.
func (r *Registry) applyInstances(regs []Registration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	in := make(map[Key]bool, len(regs))
	for _, reg := range regs {
		k := reg.Instance.Key()
		in[k] = true
		ttl := reg.TTL
		if ttl <= 0 {
			ttl = r.ttl
		}
		e, ok := r.entries[k]
		if !ok {
			r.seq++
			e = &entry{inst: cloneInstance(reg.Instance), lastSeen: now, passed: now, ttl: ttl, seq: r.seq, confirmed: true}
			r.entries[k] = e
			r.emitLocked(EventAdded, r.stateLocked(k, e))
			continue
		}
		e.confirmed = true
		if !sameInstance(e.inst, reg.Instance) || e.ttl != ttl {
			e.inst, e.ttl = cloneInstance(reg.Instance), ttl
			r.emitLocked(EventChanged, r.stateLocked(k, e))
		}
	}
	for k, e := range r.entries {
		if in[k] || !e.confirmed {
			continue
		}
		delete(r.entries, k)
		r.evictions.Add(1)
		r.emitLocked(EventRemoved, r.stateLocked(k, e))
	}
}

// applyAdmins takes a shared store's view of the admin states; registered instances
// whose state changed get CHANGED.
func (r *Registry) applyAdmins(admins map[Key]Admin) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, a := range admins {
		if old, ok := r.admins[k]; ok && old == a {
			continue
		}
		r.admins[k] = a
		if e, ok := r.entries[k]; ok {
			r.emitLocked(EventChanged, r.stateLocked(k, e))
		}
	}
}

func sameInstance(a, b Instance) bool {
	if a.Service != b.Service || a.Addr != b.Addr || a.Version != b.Version || a.Kind != b.Kind || len(a.Labels) != len(b.Labels) {
		return false
	}
	for k, v := range a.Labels {
		if w, ok := b.Labels[k]; !ok || w != v {
			return false
		}
	}
	return true
}
