package config

import (
	"context"
	"sort"
	"sync"
)

// Record is everything stored about one file: every revision and which one is served.
type Record struct {
	Key Key
	// Revisions in increasing order.
	Revisions []File
	// Current is the revision served to everyone outside a gray group (0 = none yet).
	Current int64
	// Gray maps a gray group to the revision its members get.
	Gray map[string]int64
}

func (r Record) revision(n int64) (File, bool) {
	i := sort.Search(len(r.Revisions), func(i int) bool { return r.Revisions[i].Revision >= n })
	if i < len(r.Revisions) && r.Revisions[i].Revision == n {
		return r.Revisions[i], true
	}
	return File{}, false
}

func (r Record) last() int64 {
	if len(r.Revisions) == 0 {
		return 0
	}
	return r.Revisions[len(r.Revisions)-1].Revision
}

func cloneRecord(r Record) Record {
	out := Record{Key: r.Key, Current: r.Current, Revisions: make([]File, len(r.Revisions))}
	for i, f := range r.Revisions {
		out.Revisions[i] = cloneFile(f)
	}
	if r.Gray != nil {
		out.Gray = make(map[string]int64, len(r.Gray))
		for g, n := range r.Gray {
			out.Gray[g] = n
		}
	}
	return out
}

// Store keeps config records. The in-memory store is the first backend; a bbolt file
// and Consul KV (one key per record, written with CAS) are meant to follow.
type Store interface {
	// Get returns the record of k.
	Get(ctx context.Context, k Key) (Record, bool, error)
	// Put stores rec under rec.Key.
	Put(ctx context.Context, rec Record) error
	// Delete removes the record of k.
	Delete(ctx context.Context, k Key) error
	// List returns every record whose key has dir's directory and a file name starting
	// with dir.File, sorted by file name.
	List(ctx context.Context, dir Key) ([]Record, error)
}

// MemStore is a Store in memory.
type MemStore struct {
	mu   sync.Mutex
	recs map[Key]Record
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore { return &MemStore{recs: map[Key]Record{}} }

// Get returns the record of k.
func (m *MemStore) Get(_ context.Context, k Key) (Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[k]
	if !ok {
		return Record{}, false, nil
	}
	return cloneRecord(r), true, nil
}

// Put stores rec.
func (m *MemStore) Put(_ context.Context, rec Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs[rec.Key] = cloneRecord(rec)
	return nil
}

// Delete removes the record of k.
func (m *MemStore) Delete(_ context.Context, k Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.recs, k)
	return nil
}

// List returns the records under dir whose file name starts with dir.File.
func (m *MemStore) List(_ context.Context, dir Key) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Record
	for k, r := range m.recs {
		if dir.Matches(k, true) {
			out = append(out, cloneRecord(r))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.File < out[j].Key.File })
	return out, nil
}
