package registry

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Registration is a stored registration: the instance and the TTL it registered with.
type Registration struct {
	Instance Instance      `json:"instance"`
	TTL      time.Duration `json:"ttl"`
}

// Store keeps the durable part of the registry: registrations and admin state. Load is
// soft state and stays in memory. Backends: MemStore here, a bbolt file (store/bolt) and
// Consul (store/consul); store/storetest is the conformance suite every backend passes.
type Store interface {
	// PutInstance records a registration (insert or replace).
	PutInstance(ctx context.Context, reg Registration) error
	// DeleteInstance forgets a registration (its admin state stays); unknown keys are no error.
	DeleteInstance(ctx context.Context, k Key) error
	// Instances returns every recorded registration, sorted by service and addr.
	Instances(ctx context.Context) ([]Registration, error)
	// PutAdmin records the admin state of k, whether or not k is registered.
	PutAdmin(ctx context.Context, k Key, a Admin) error
	// Admins returns every recorded admin state.
	Admins(ctx context.Context) (map[Key]Admin, error)
}

// SharedStore is a Store that several polaris replicas share and that keeps liveness
// itself (Consul): the registry passes heartbeats through with Alive (at most once per
// TTL/3 per instance), leaves eviction to the store, and follows the store's views so
// that a registration made through one replica shows on every replica.
type SharedStore interface {
	Store
	// Alive renews the liveness of k in the store. An error means the store no longer
	// knows k; the registry then puts the registration again.
	Alive(ctx context.Context, k Key) error
	// WatchInstances calls fn with every live registration whenever the set changes,
	// first at once, until ctx ends; it retries store errors itself.
	WatchInstances(ctx context.Context, fn func([]Registration))
	// WatchAdmins calls fn with every admin state whenever one changes, first at once,
	// until ctx ends; it retries store errors itself.
	WatchAdmins(ctx context.Context, fn func(map[Key]Admin))
}

// SortRegistrations sorts regs by service and addr.
func SortRegistrations(regs []Registration) {
	sort.Slice(regs, func(i, j int) bool {
		a, b := regs[i].Instance, regs[j].Instance
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		return a.Addr < b.Addr
	})
}

// CloneRegistration returns a deep copy of reg.
func CloneRegistration(reg Registration) Registration {
	reg.Instance = cloneInstance(reg.Instance)
	return reg
}

// MemStore is a Store in memory.
type MemStore struct {
	mu     sync.Mutex
	insts  map[Key]Registration
	admins map[Key]Admin
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore {
	return &MemStore{insts: map[Key]Registration{}, admins: map[Key]Admin{}}
}

// PutInstance records a registration.
func (m *MemStore) PutInstance(_ context.Context, reg Registration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.insts[reg.Instance.Key()] = CloneRegistration(reg)
	return nil
}

// DeleteInstance forgets a registration.
func (m *MemStore) DeleteInstance(_ context.Context, k Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.insts, k)
	return nil
}

// Instances returns every recorded registration.
func (m *MemStore) Instances(context.Context) ([]Registration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Registration, 0, len(m.insts))
	for _, r := range m.insts {
		out = append(out, CloneRegistration(r))
	}
	SortRegistrations(out)
	return out, nil
}

// PutAdmin records the admin state of k.
func (m *MemStore) PutAdmin(_ context.Context, k Key, a Admin) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.admins[k] = a
	return nil
}

// Admins returns every recorded admin state.
func (m *MemStore) Admins(context.Context) (map[Key]Admin, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[Key]Admin, len(m.admins))
	for k, v := range m.admins {
		out[k] = v
	}
	return out, nil
}
