package registry

import (
	"context"
	"sync"
)

// Store keeps the durable part of the registry: registrations and admin state. Load and
// liveness are soft state and stay in memory. The in-memory store is the first backend;
// a bbolt file and Consul (catalog + KV) are meant to follow behind the same interface.
type Store interface {
	// PutInstance records a registration.
	PutInstance(ctx context.Context, inst Instance) error
	// DeleteInstance forgets a registration (its admin state stays).
	DeleteInstance(ctx context.Context, k Key) error
	// PutAdmin records the admin state of k, whether or not k is registered.
	PutAdmin(ctx context.Context, k Key, a Admin) error
	// Admins returns every recorded admin state.
	Admins(ctx context.Context) (map[Key]Admin, error)
}

// MemStore is a Store in memory.
type MemStore struct {
	mu     sync.Mutex
	insts  map[Key]Instance
	admins map[Key]Admin
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore {
	return &MemStore{insts: map[Key]Instance{}, admins: map[Key]Admin{}}
}

// PutInstance records a registration.
func (m *MemStore) PutInstance(_ context.Context, inst Instance) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.insts[inst.Key()] = cloneInstance(inst)
	return nil
}

// DeleteInstance forgets a registration.
func (m *MemStore) DeleteInstance(_ context.Context, k Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.insts, k)
	return nil
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
