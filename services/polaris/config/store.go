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

// Revision returns revision n of the record.
func (r Record) Revision(n int64) (File, bool) {
	i := sort.Search(len(r.Revisions), func(i int) bool { return r.Revisions[i].Revision >= n })
	if i < len(r.Revisions) && r.Revisions[i].Revision == n {
		return r.Revisions[i], true
	}
	return File{}, false
}

// Last is the highest revision of the record (0 when it has none).
func (r Record) Last() int64 {
	if len(r.Revisions) == 0 {
		return 0
	}
	return r.Revisions[len(r.Revisions)-1].Revision
}

// Append adds f to the record as revision Last()+1 and returns it as stored: with
// f.GrayGroup empty it becomes the current revision and every gray revision is retired
// (a full release supersedes the canary); otherwise only f.GrayGroup gets it. With keep
// > 0 the record then keeps at most keep revisions: the oldest are pruned, except the
// revisions in force (current and gray), and their numbers returned. Every Store
// implements its Append with this, so the backends agree on the semantics.
func (r *Record) Append(f File, keep int) (File, []int64) {
	f = cloneFile(f)
	f.Key, f.Revision, f.Gray = r.Key, r.Last()+1, f.GrayGroup != ""
	r.Revisions = append(r.Revisions, f)
	if f.GrayGroup == "" {
		r.Current, r.Gray = f.Revision, nil
	} else {
		if r.Gray == nil {
			r.Gray = map[string]int64{}
		}
		r.Gray[f.GrayGroup] = f.Revision
	}
	return cloneFile(f), r.prune(keep)
}

// prune drops the oldest revisions beyond keep that are not in force.
func (r *Record) prune(keep int) []int64 {
	excess := len(r.Revisions) - keep
	if keep <= 0 || excess <= 0 {
		return nil
	}
	inForce := map[int64]bool{r.Current: true}
	for _, n := range r.Gray {
		inForce[n] = true
	}
	var pruned []int64
	kept := r.Revisions[:0]
	for _, rf := range r.Revisions {
		if excess > 0 && !inForce[rf.Revision] {
			pruned = append(pruned, rf.Revision)
			excess--
			continue
		}
		kept = append(kept, rf)
	}
	clear(r.Revisions[len(kept):])
	r.Revisions = kept
	return pruned
}

// Pruned tells whether revision n of the record existed once but is no longer kept.
func (r Record) Pruned(n int64) bool {
	_, ok := r.Revision(n)
	return !ok && n > 0 && n <= r.Last()
}

// CloneRecord returns a deep copy of r.
func CloneRecord(r Record) Record {
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

// Store keeps config records and apply reports. Backends: MemStore here, a bbolt file
// (store/bolt) and Consul KV (store/consul); store/storetest is the conformance suite
// every backend passes. Writes are atomic: a failed write leaves nothing behind.
type Store interface {
	// Get returns the record of k.
	Get(ctx context.Context, k Key) (Record, bool, error)
	// Append stores f (Key, Content, Created, Comment, GrayGroup) as the next revision
	// of f.Key, as Record.Append does with keep (the revisions kept per file, ≤ 0: all),
	// removing the pruned revisions in the same write, and returns the new record and the
	// stored file. Concurrent appends, from this process or from other replicas sharing
	// the store, get distinct consecutive revisions; none is lost.
	Append(ctx context.Context, f File, keep int) (Record, File, error)
	// Delete removes the record of k with its history and apply reports; it reports
	// whether k existed.
	Delete(ctx context.Context, k Key) (bool, error)
	// List returns every record whose key has dir's directory and a file name starting
	// with dir.File, sorted by file name.
	List(ctx context.Context, dir Key) ([]Record, error)
	// PutApplied records an apply report, replacing the previous one of a.Addr for a.Key.
	PutApplied(ctx context.Context, a Applied) error
	// Applied returns the apply reports of k, sorted by address.
	Applied(ctx context.Context, k Key) ([]Applied, error)
}

// SharedStore is a Store that several polaris replicas share (Consul): the center
// follows the changes other replicas make so that their pushes reach its watchers.
type SharedStore interface {
	Store
	// Watch calls fn with the key and new record (nil once deleted) of every file that
	// changes after Watch starts, until ctx ends; it retries store errors itself.
	Watch(ctx context.Context, fn func(k Key, rec *Record))
}

// MemStore is a Store in memory.
type MemStore struct {
	mu      sync.Mutex
	recs    map[Key]Record
	applied map[Key]map[string]Applied
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore {
	return &MemStore{recs: map[Key]Record{}, applied: map[Key]map[string]Applied{}}
}

// Get returns the record of k.
func (m *MemStore) Get(_ context.Context, k Key) (Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[k]
	if !ok {
		return Record{}, false, nil
	}
	return CloneRecord(r), true, nil
}

// Append stores f as the next revision of f.Key.
func (m *MemStore) Append(_ context.Context, f File, keep int) (Record, File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.recs[f.Key]
	if !ok {
		rec = Record{Key: f.Key}
	}
	rec = CloneRecord(rec)
	stored, _ := rec.Append(f, keep)
	m.recs[f.Key] = rec
	return CloneRecord(rec), stored, nil
}

// Delete removes the record of k and its apply reports.
func (m *MemStore) Delete(_ context.Context, k Key) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.recs[k]
	delete(m.recs, k)
	delete(m.applied, k)
	return ok, nil
}

// List returns the records under dir whose file name starts with dir.File.
func (m *MemStore) List(_ context.Context, dir Key) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Record
	for k, r := range m.recs {
		if dir.Matches(k, true) {
			out = append(out, CloneRecord(r))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.File < out[j].Key.File })
	return out, nil
}

// PutApplied records an apply report.
func (m *MemStore) PutApplied(_ context.Context, a Applied) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	byAddr := m.applied[a.Key]
	if byAddr == nil {
		byAddr = map[string]Applied{}
		m.applied[a.Key] = byAddr
	}
	byAddr[a.Addr] = a
	return nil
}

// Applied returns the apply reports of k.
func (m *MemStore) Applied(_ context.Context, k Key) ([]Applied, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Applied, 0, len(m.applied[k]))
	for _, a := range m.applied[k] {
		out = append(out, a)
	}
	SortApplied(out)
	return out, nil
}

// SortApplied sorts apply reports by address.
func SortApplied(as []Applied) {
	sort.Slice(as, func(i, j int) bool { return as[i].Addr < as[j].Addr })
}
